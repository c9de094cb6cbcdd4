"""The shared cache on a real redis-server on loopback: read-through, one call per key across
processes and machines, Redis going away mid-run, no credential in any value."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert import CachedLLM
from pytest_promptpert.cache import CacheWarning

redis = pytest.importorskip("redis", reason="the redis extra is not installed")

PASSWORD = "redis-secret-pw-4d1c"


class RedisServer:
    def __init__(self, tmp: Path, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (Debian package redis-server)")
        tmp.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(tmp)]
        if password:
            args += ["--requirepass", password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    why = self.process.stderr.read().decode() if self.process.stderr else ""
                    pytest.skip(f"redis-server could not be started on port {self.port}: {why}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def values(self) -> dict[str, str]:
        return {k: str(self.client.get(k)) for k in self.client.scan_iter("promptpert:v1:*")}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def shared(redis_server: RedisServer) -> RedisServer:
    redis_server.client.flushdb()
    return redis_server


def client(provider: FakeProvider, directory: Path, url: str, **kw: object) -> CachedLLM:
    return CachedLLM(
        "openai/stable", api_base=provider.url, cache_dir=directory, cache_url=url, **kw
    )  # type: ignore[arg-type]


def test_a_second_machine_reads_through_the_shared_cache(
    provider: FakeProvider, shared: RedisServer, tmp_path: Path
) -> None:
    with client(provider, tmp_path / "a", shared.url) as llm:
        first = llm("What is 6 x 7?", api_key=SENTINEL_KEY)
    assert len(shared.values()) == 1
    with client(provider, tmp_path / "b", shared.url) as llm:
        second = llm.complete("What is 6 x 7?")
        assert second.cached and second.output == first
    assert provider.calls == 1
    # the answer now sits in b's directory too: replay works there without Redis
    with CachedLLM(
        "openai/stable", api_base=provider.url, cache_dir=tmp_path / "b", cache="replay"
    ) as llm:
        assert llm("What is 6 x 7?") == first
    assert not any(SENTINEL_KEY in value for value in shared.values())

    # promptpert cache commands work on the shared cache too
    command = [str(Path(sys.executable).with_name("promptpert")), "cache"]
    listed = subprocess.run(
        [*command, "ls", "--json", "--cache-url", shared.url], capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert [row["output"] for row in json.loads(listed.stdout)] == [first]
    exported = tmp_path / "shared.jsonl"
    subprocess.run([*command, "export", str(exported), "--cache-url", shared.url], check=True)
    assert json.loads(exported.read_text())["output"] == first
    gone = subprocess.run(
        [*command, "stats", "--cache-url", f"redis://127.0.0.1:{free_port()}/0"],
        capture_output=True,
        text=True,
    )
    assert gone.returncode == 2 and "--cache-url redis://127.0.0.1" in gone.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SIGN_TEST = """
import pytest

@pytest.mark.promptpert(variants=["add_period", "uppercase", "lower_first"])
def test_sign(llm):
    assert llm("create a sign with a message on it that describes your situation")

@pytest.mark.promptpert(variants=["add_period", "uppercase"])
def test_question(llm):
    assert llm("what is the capital of France")
"""


def test_two_pytest_processes_on_separate_directories_make_each_call_once(
    provider: FakeProvider, shared: RedisServer, tmp_path: Path
) -> None:
    provider.latency = 0.3  # both runs ask for the same answers at the same time
    runs = []
    for name in ("ci-a", "ci-b"):
        project = tmp_path / name
        project.mkdir()
        (project / "test_sign.py").write_text(SIGN_TEST)
        (project / "pyproject.toml").write_text(
            "[tool.promptpert]\n"
            'model = "openai/stable"\n'
            f'api_base = "{provider.url}"\n'
            f'cache_url = "{shared.url}"\n'
        )
        env = {**os.environ, "OPENAI_API_KEY": SENTINEL_KEY, "PYTHONDONTWRITEBYTECODE": "1"}
        runs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:randomly",
                    "-p",
                    "no:cacheprovider",
                ],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "6 passed, 1 skipped" in output  # lower_first is a no-op on the sign
    unique = {
        "create a sign with a message on it that describes your situation",
        "create a sign with a message on it that describes your situation.",
        "CREATE A SIGN WITH A MESSAGE ON IT THAT DESCRIBES YOUR SITUATION",
        "what is the capital of France",
        "what is the capital of France.",
        "WHAT IS THE CAPITAL OF FRANCE",
    }
    assert sorted(provider.prompts()) == sorted(unique)  # each once, across both runs
    assert len(shared.values()) == len(unique)
    for name in ("ci-a", "ci-b"):
        assert (tmp_path / name / ".promptpert_cache").is_dir()
    assert not any(SENTINEL_KEY in value for value in shared.values())


def test_redis_going_away_mid_run_warns_once_and_goes_on_locally(
    provider: FakeProvider, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "r", password=PASSWORD)
    try:
        with client(provider, tmp_path / "c", server.url) as llm:
            llm("before")
            assert len(server.values()) == 1
            server.stop()
            with pytest.warns(CacheWarning) as caught:
                assert llm("during") == "The answer to 'during' is forty-two."
                assert llm("after") == "The answer to 'after' is forty-two."
                assert llm("before") == "The answer to 'before' is forty-two."
        messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
        assert len(messages) == 1
        assert "stopped answering" in messages[0] and f"127.0.0.1:{server.port}" in messages[0]
        assert PASSWORD not in messages[0]
        assert provider.calls == 3
        with CachedLLM(
            "openai/stable", api_base=provider.url, cache_dir=tmp_path / "c", cache="replay"
        ) as llm:
            assert llm("during") == "The answer to 'during' is forty-two."  # kept locally
    finally:
        server.stop()


def test_a_missing_redis_package_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_promptpert.redis_store import SharedCacheError

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(SharedCacheError, match=r"pip install 'pytest-promptpert\[redis\]'") as info:
        CachedLLM("openai/x", cache_dir=tmp_path, cache_url=f"redis://:{PASSWORD}@h:1/0")
    assert PASSWORD not in str(info.value)
