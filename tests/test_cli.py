"""The ``promptpert`` console script, run as a subprocess on caches written by real runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SENTINEL_KEY
from fake_provider import FakeProvider

from pytest_promptpert import cli, cli_cache
from pytest_promptpert.request import key_of

SIGN = "create a sign with a message on it that describes your situation"
SIGN_TEST = f'''
import pytest

@pytest.mark.promptpert(variants=["add_period", "strip_period", "lower_first", "uppercase"])
def test_sign(llm):
    assert llm("{SIGN}")

@pytest.mark.promptpert(variants=["add_period"])
def test_question(llm):
    assert llm("What is the capital of France")
'''
PROMPTPERT = Path(sys.executable).with_name("promptpert")


def promptpert(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert PROMPTPERT.exists(), "the promptpert console script is not installed (pip install -e .)"
    return subprocess.run(
        [str(PROMPTPERT), *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


def stats(cwd: Path) -> dict[str, object]:
    done = promptpert("cache", "stats", "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


@pytest.fixture
def run(project, provider, monkeypatch):  # type: ignore[no-untyped-def]
    """A pytester project on the fake provider; ``run(*args)`` runs pytest in it."""
    monkeypatch.delenv("PROMPTPERT_CACHE_DIR", raising=False)
    pytester = project("period")
    pytester.makepyfile(SIGN_TEST)

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest(*args)

    run.path = pytester.path  # type: ignore[attr-defined]
    return run


def test_stats_counts_what_a_run_wrote_and_what_the_next_run_saved(run, provider) -> None:
    run().assert_outcomes(passed=3, failed=2, skipped=2)
    first = stats(run.path)
    # original + add_period + uppercase of the sign, original + add_period of the question
    assert first["entries"] == provider.calls == 5
    assert first["models"] == {"openai/period": 5}
    assert first["hits"] == 0 and first["runs"] == 1
    run().assert_outcomes(passed=3, failed=2, skipped=2)
    assert provider.calls == 5
    second = stats(run.path)
    assert second["entries"] == 5 and second["runs"] == 2
    assert second["hits"] == 5  # every answer of the second run came from the cache
    assert second["tokens_saved"] == second["tokens"] > 0
    assert second["oldest"] <= second["newest"]
    text = promptpert("cache", "stats", cwd=run.path)
    assert text.returncode == 0
    assert "openai/period (5)" in text.stdout and "5 in 2 runs" in text.stdout


def test_ls_filters_and_show_prints_one_entry(run) -> None:
    run()
    listed = promptpert("cache", "ls", "--grep", "CAPITAL of france", "--json", cwd=run.path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["prompt"] for r in rows) == [
        "What is the capital of France",
        "What is the capital of France.",
    ]
    assert (
        promptpert("cache", "ls", "--model", "openai/other", cwd=run.path).stdout == "0 entries\n"
    )
    future = promptpert("cache", "ls", "--since", "2999-01-01", "--json", cwd=run.path)
    assert json.loads(future.stdout) == []
    assert promptpert("cache", "ls", "--limit", "0", cwd=run.path).stdout == "0 entries\n"
    newest = json.loads(promptpert("cache", "ls", "--limit", "1", "--json", cwd=run.path).stdout)
    assert len(newest) == 1
    table = promptpert("cache", "ls", cwd=run.path).stdout
    assert "5 entries" in table and "openai/period" in table

    key = rows[0]["key"]
    shown = promptpert("cache", "show", key[:8], cwd=run.path)
    assert shown.returncode == 0, shown.stderr
    assert f"key        {key}" in shown.stdout
    assert "What is the capital of France" in shown.stdout
    assert "tokens" in shown.stdout and "openai/period" in shown.stdout
    full = json.loads(promptpert("cache", "show", key, "--json", cwd=run.path).stdout)
    assert full["key"] == key and full["output"] == rows[0]["output"]
    missing = promptpert("cache", "show", "abcdef12", cwd=run.path)
    assert missing.returncode == 2
    assert "'abcdef12': no entry" in missing.stderr


def test_export_clear_import_round_trip_serves_a_replay_run(run, provider) -> None:
    run()
    exported = run.path / "answers.jsonl"
    done = promptpert("cache", "export", str(exported), cwd=run.path)
    assert done.returncode == 0, done.stderr
    lines = exported.read_text().splitlines()
    assert len(lines) == 5 and lines == sorted(lines)  # sorted by key: exports diff cleanly
    assert all(json.loads(line)["request"]["model"] == "openai/period" for line in lines)
    assert SENTINEL_KEY not in exported.read_text()

    declined = promptpert("cache", "clear", cwd=run.path, stdin="n\n")
    assert declined.returncode == 1 and stats(run.path)["entries"] == 5
    cleared = promptpert("cache", "clear", "--yes", cwd=run.path)
    assert cleared.returncode == 0 and "deleted 5 entries" in cleared.stdout
    assert stats(run.path)["entries"] == 0

    imported = promptpert("cache", "import", str(exported), cwd=run.path)
    assert imported.returncode == 0, imported.stderr
    assert "5 added" in imported.stdout
    again = promptpert("cache", "import", str(exported), "--json", cwd=run.path)
    assert json.loads(again.stdout) == {"added": 0, "same": 5, "kept": 0, "replaced": 0}
    calls = provider.calls
    run("--promptpert-cache=replay").assert_outcomes(passed=3, failed=2, skipped=2)
    assert provider.calls == calls


def test_import_checks_every_line_before_writing_anything(run, tmp_path) -> None:
    run()
    good = run.path / "good.jsonl"
    promptpert("cache", "export", str(good), cwd=run.path)
    lines = good.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["request"]["messages"][0]["content"] += "!"  # the key no longer fits the request
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]) + "\n")
    target = tmp_path / "fresh"
    done = promptpert("cache", "import", str(bad), "--cache-dir", str(target), cwd=run.path)
    assert done.returncode == 2
    assert f"{bad}:2: 'key'" in done.stderr and "is not the key of its request" in done.stderr
    assert not target.exists() or stats_at(target, run.path)["entries"] == 0

    leaked = json.loads(lines[0])
    leaked["request"]["params"]["api_key"] = SENTINEL_KEY
    bad.write_text(json.dumps(leaked) + "\n")
    done = promptpert("cache", "import", str(bad), "--cache-dir", str(target), cwd=run.path)
    assert done.returncode == 2 and "credential" in done.stderr
    assert SENTINEL_KEY not in done.stderr


def stats_at(directory: Path, cwd: Path) -> dict[str, object]:
    done = promptpert("cache", "stats", "--json", "--cache-dir", str(directory), cwd=cwd)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_prune_by_model_age_and_what_the_last_run_did_not_use(run) -> None:
    run()
    assert promptpert("cache", "prune", cwd=run.path).returncode == 2  # no criterion
    kept = promptpert("cache", "prune", "--older-than", "1d", cwd=run.path)
    assert kept.stdout == "pruned 0 entries (0 B)\n"
    other = promptpert("cache", "prune", "--model", "openai/other", cwd=run.path)
    assert other.stdout.startswith("pruned 0 entries")
    run("-k", "test_question").assert_outcomes(passed=1, failed=1)
    dry = promptpert("cache", "prune", "--unused-since-run", "--dry-run", cwd=run.path)
    assert dry.stdout.startswith("would prune 3 entries")  # the sign's three answers
    assert stats(run.path)["entries"] == 5
    done = promptpert("cache", "prune", "--unused-since-run", cwd=run.path)
    assert done.returncode == 0 and done.stdout.startswith("pruned 3 entries")
    listed = json.loads(promptpert("cache", "ls", "--json", cwd=run.path).stdout)
    assert sorted(r["prompt"] for r in listed) == [
        "What is the capital of France",
        "What is the capital of France.",
    ]
    bad = promptpert("cache", "prune", "--older-than", "soon", cwd=run.path)
    assert bad.returncode == 2 and "--older-than: 'soon' is not a duration" in bad.stderr


def test_cache_commands_on_a_missing_cache_say_where_they_looked(tmp_path: Path) -> None:
    done = promptpert("cache", "stats", "--cache-dir", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"no cache at {tmp_path / 'nope'}" in done.stderr


def test_variants_previews_every_variant_and_marks_no_ops(tmp_path: Path) -> None:
    done = promptpert(
        "variants", "Create a sign.", "--variants", "punctuation,upper_first", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["original", "'Create", "a", "sign.'"]
    by_name = {line.split()[0]: line for line in lines[2:]}
    assert list(by_name) == [
        "add_period",
        "strip_period",
        "question_mark",
        "exclamation",
        "strip_punctuation",
        "upper_first",
    ]
    assert "no-op" in by_name["add_period"] and "no-op" in by_name["upper_first"]
    assert (
        "'Create a sign?'" in by_name["question_mark"] and "no-op" not in by_name["question_mark"]
    )
    data = json.loads(
        promptpert("variants", "x y", "--variants", "double_space", "--json", cwd=tmp_path).stdout
    )
    assert data == [{"variant": "double_space", "text": "x  y", "no_op": False}]
    control = promptpert("variants", "x", "--variants", "control", "--json", cwd=tmp_path)
    assert json.loads(control.stdout) == [{"variant": "control", "text": "x", "no_op": False}]
    unknown = promptpert("variants", "hi", "--variants", "add_perod", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown variant 'add_perod'" in unknown.stderr


def test_report_renders_html_and_diff_names_what_got_worse(run, project, tmp_path) -> None:
    run("--promptpert-report=old.json").assert_outcomes(passed=3, failed=2, skipped=2)
    old = run.path / "old.json"
    html = tmp_path / "out.html"
    done = promptpert("report", str(old), "--html", str(html), cwd=run.path)
    assert done.returncode == 0, done.stderr
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "test_sign" in page

    # The same tests on a model that ignores formatting: every failing variant gets better.
    project("stable")
    run("--promptpert-report=new.json").assert_outcomes(passed=5, skipped=2)
    same = promptpert("diff", str(old), str(old), cwd=run.path)
    assert same.returncode == 0 and "no variant changed" in same.stdout
    better = promptpert("diff", str(old), "new.json", "--format", "markdown", cwd=run.path)
    assert better.returncode == 0, better.stderr
    assert "**Better** (2)" in better.stdout and "**Worse**" not in better.stdout
    worse = promptpert("diff", "new.json", str(old), "--json", cwd=run.path)
    assert worse.returncode == 1
    data = json.loads(worse.stdout)
    assert data["counts"]["worse"] == 2
    assert {(c["test"].rsplit("::", 1)[1], c["variant"]) for c in data["changes"]} == {
        ("test_sign", "add_period"),
        ("test_question", "add_period"),
    }
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    bad = promptpert("diff", str(broken), str(old), cwd=run.path)
    assert bad.returncode == 2 and "is not a promptpert JSON report" in bad.stderr


def test_python_m_and_help_on_every_subcommand(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_promptpert", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and "exit status" in done.stdout
    for command in (["cache", "stats"], ["cache", "import"], ["variants"], ["diff"], ["report"]):
        assert "exit status" in promptpert(*command, "--help", cwd=tmp_path).stdout
    assert promptpert("cache", "nope", cwd=tmp_path).returncode == 2


def test_default_cache_dir_follows_pyproject(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PROMPTPERT_CACHE_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.promptpert]\ncache_dir = "var/answers"\n')
    (tmp_path / "sub").mkdir()
    assert cli_cache.default_cache_dir(tmp_path / "sub") == tmp_path / "var" / "answers"
    monkeypatch.setenv("PROMPTPERT_CACHE_DIR", "elsewhere")
    assert cli_cache.default_cache_dir(tmp_path / "sub") == tmp_path / "sub" / "elsewhere"


def test_usage_tally_is_written_once_per_process_at_close(
    provider: FakeProvider, tmp_path: Path
) -> None:
    from pytest_promptpert import CachedLLM
    from pytest_promptpert.usage import USAGE_DIR, load_usage

    def client(run: str) -> CachedLLM:
        return CachedLLM("openai/stable", api_base=provider.url, cache_dir=tmp_path, run_id=run)

    with client("r1") as llm:
        llm("one")
        llm("two")
        llm("two")  # read back what this run wrote: not a saving
        assert not (tmp_path / USAGE_DIR).exists()  # nothing written while the run goes
    with client("r2") as llm:
        llm("one")
        llm("one")
        one = llm.request("one").key()
    usage = load_usage(tmp_path)
    assert len(list((tmp_path / USAGE_DIR).iterdir())) == 2
    assert usage.hit_count == 1 and usage.hits == {one: 1}
    assert usage.runs.keys() == {"r1", "r2"} and usage.last_run == "r2"
    assert usage.last_run_keys == {one}


def test_many_tallies_fold_into_a_summary_without_losing_counts(tmp_path: Path) -> None:
    from pytest_promptpert.usage import COMPACT_AT, USAGE_DIR, UsageTally, load_usage

    key = "ab" * 32
    tally = UsageTally()
    for run in range(COMPACT_AT + 5):
        tally.hit(key, 10, 0.5)
        tally.wrote(f"{run:064x}")
        tally.flush(tmp_path, f"run-{run}")
    files = [p.name for p in (tmp_path / USAGE_DIR).glob("*.json")]
    assert len(files) < COMPACT_AT and "_summary.json" in files
    usage = load_usage(tmp_path)
    assert usage.hit_count == COMPACT_AT + 5 and usage.hits == {key: COMPACT_AT + 5}
    assert usage.tokens_saved == 10 * (COMPACT_AT + 5)
    assert len(usage.runs) == COMPACT_AT + 5
    assert usage.last_run_keys == {key, f"{COMPACT_AT + 4:064x}"}


def test_cli_commands_are_functions(tmp_path: Path) -> None:
    import io

    out = io.StringIO()
    assert cli.main(["variants", "hi there", "--variants", "uppercase", "--json"], out=out) == 0
    assert json.loads(out.getvalue()) == [
        {"variant": "uppercase", "text": "HI THERE", "no_op": False}
    ]
    assert cli.main(["cache", "stats", "--cache-dir", str(tmp_path / "none")], out=out) == 2


def test_progress_count_only_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty  # POSIX only, as the suite's subprocess tests are

    source = tmp_path / "one.jsonl"
    messages = [{"role": "user", "content": "hi"}]
    request = {"model": "m", "messages": messages, "params": {}, "sample": 0}
    source.write_text(
        json.dumps({"key": key_of(request), "output": "x", "request": request}) + "\n"
    )
    quiet = promptpert(
        "cache", "import", str(source), "--cache-dir", str(tmp_path / "a"), cwd=tmp_path
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [str(PROMPTPERT), "cache", "import", str(source), "--cache-dir", str(tmp_path / "b")],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
        )
        shown = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 0
    assert "importing 1/1" in shown
