from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fake_provider

#: A key the fake provider accepts; tests search everything the run wrote for it.
SENTINEL_KEY = "sk-promptpert-sentinel-7f3a9c2e"


@pytest.fixture(scope="session")
def provider_server() -> Iterator[fake_provider.FakeProvider]:
    server = fake_provider.start()
    yield server
    server.shutdown()


@pytest.fixture
def provider(
    provider_server: fake_provider.FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> fake_provider.FakeProvider:
    provider_server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return provider_server


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester whose inner runs keep their files' order, whatever order the outer run has.

    pytest-randomly would otherwise shuffle every inner run under a fresh random seed (pytester
    clears PYTEST_ADDOPTS, so this is set after it). A test that wants a shuffled inner run
    passes ``-p randomly --randomly-seed=N`` itself.
    """
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


@pytest.fixture(scope="session")
def litellm_preloaded() -> None:
    """Import litellm once, outside pytester's in-process runs.

    litellm adds importlib_metadata's finder to sys.meta_path; pytester would unload the module
    after each in-process run and leave the finder behind, which breaks package metadata.
    """
    from pytest_promptpert.backend import import_litellm

    import_litellm()


@pytest.fixture
def project(  # type: ignore[no-untyped-def]
    pytester: pytest.Pytester, provider: fake_provider.FakeProvider, litellm_preloaded: None
):
    """A pytester project whose pyproject points [tool.promptpert] at the fake provider."""

    def make(model: str = "period", **settings: object) -> pytest.Pytester:
        lines = [
            "[tool.promptpert]",
            f'model = "openai/{model}"',
            f'api_base = "{provider.url}"',
        ]
        for key, value in settings.items():
            lines.append(f"{key} = {_toml(value)}")
        pytester.makefile(".toml", pyproject="\n".join(lines) + "\n")
        return pytester

    return make


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
