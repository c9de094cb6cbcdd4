"""How a model call failed, and whether every other call would fail the same way.

:class:`ProviderError` and its kinds, and the tests that tell them apart in the exceptions
litellm raises (which call a missing key or a cassette that refuses a request "HTTP 500").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().partition("\n")[0]
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class ProviderError(RuntimeError):
    """A model call that failed for good (after retries). Never cached."""

    #: Every call to the same model and endpoint would fail the same way (no API key, no local
    #: extra, unknown model): the client makes no further call, and says so briefly.
    run_wide: ClassVar[bool] = False

    def __init__(
        self, model: str, status: int | None, message: str, *, headline: str | None = None
    ) -> None:
        self.model = model
        self.status = status
        self.message = message
        #: the failure in a few words, for the pointers to it and the terminal summary
        self.headline = headline or _first_line(message)
        #: on a repeat (see :meth:`again`): the failure met first
        self.first: ProviderError | None = None
        where = f"HTTP {status}" if status else "no HTTP status"
        super().__init__(f"model {model!r} failed ({where}): {message}")

    def again(self) -> ProviderError:
        """This run-wide failure met by a later call: the same class, a message pointing back."""
        repeat = self.__class__.__new__(self.__class__)
        ProviderError.__init__(
            repeat,
            self.model,
            self.status,
            f"same error as an earlier call: {self.headline}; see the first one",
            headline=self.headline,
        )
        repeat.first = self
        return repeat


def run_wide_lines(headlines: list[str]) -> list[str]:
    """One summary line per run-wide failure, from the headline each item that met it gave."""
    counts: dict[str, int] = {}
    for headline in headlines:
        counts[headline] = counts.get(headline, 0) + 1
    return [
        f"promptpert: {headline} — the same error in {n} item{'s' if n != 1 else ''},"
        " shown in full above"
        for headline, n in counts.items()
    ]


class AuthenticationFailed(ProviderError):
    """The provider refused the credentials, or there were none."""

    run_wide = True


class UnknownModel(ProviderError):
    """litellm cannot tell which provider the model string means, or the provider has no such
    model."""

    run_wide = True


class RequestRefused(ProviderError):
    """The request never left this process: a test plugin (pytest-recording / vcrpy,
    pytest-socket, ...) refused it. Not retried; the original exception is the cause."""


#: Where the exceptions of test plugins that refuse requests come from: vcrpy (pytest-recording),
#: pytest-socket, pytest-httpx, respx, pytest itself and conftest files.
_REFUSERS = ("vcr", "pytest", "_pytest", "respx", "responses", "conftest")
_NETWORK_DISABLED = re.compile(r"network is disabled", re.IGNORECASE)
_MISSING_KEY = re.compile(r"missing (credentials|[\w ]{0,40}api[ _-]?key)", re.IGNORECASE)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and the exceptions it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def refused_in_process(exc: BaseException) -> BaseException | None:
    """The exception a test plugin raised inside the HTTP stack, which litellm wrapped.

    vcrpy's ``CannotOverwriteExistingCassetteException``, pytest-socket's
    ``SocketBlockedError``, pytest-recording's ``RuntimeError("Network is disabled ...")``:
    litellm reports each as an HTTP 500 from the provider, which it is not.
    """
    for link in list(_chain(exc))[1:]:
        module = type(link).__module__
        package = module.partition(".")[0]
        if (package.startswith(_REFUSERS) and package != "pytest_promptpert") or (
            type(link) is RuntimeError and _NETWORK_DISABLED.search(str(link))
        ):
            return link
    return None


def missing_credentials(exc: BaseException) -> str | None:
    """What the SDK said when it refused to send the request for want of a key, if it did.

    litellm reports a missing OpenAI key as ``InternalServerError`` (HTTP 500), a missing Gemini
    key as ``APIConnectionError``, a missing Anthropic key as ``AuthenticationError``.
    """
    said = [str(link) for link in _chain(exc) if _MISSING_KEY.search(str(link))]
    return said[-1] if said else None
