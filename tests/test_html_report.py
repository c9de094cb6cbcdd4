"""The HTML report: pure checks of the page text, then the page in a real headless Chromium.

The browser tests need the ``selenium`` package and Debian's ``chromium`` and
``chromium-driver``; without them they are skipped, saying what is missing.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from synthetic import STATS, result, suite

from pytest_promptpert.html_report import render_html, score_colour, word_diff
from pytest_promptpert.report import build_json
from pytest_promptpert.settings import Settings

PAYLOAD = '</script><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
HOSTILE_VARIANT = 'evil"><img src=x onerror="window.__pwned=3">'


def report(results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return build_json(suite() if results is None else results, STATS, Settings())


def hostile_results() -> list[dict[str, Any]]:
    test = "tests/test_prompts.py::test_sign"
    return [
        *suite(),
        result(
            test,
            HOSTILE_VARIANT,
            "failed",
            0.05,
            original_prompt="Say <b>hi</b> & <!-- bye",
            variant_prompt="Say <b>hi</b> & <!-- bye.",
            variant_output=PAYLOAD,
        ),
    ]


class Cells(HTMLParser):
    """Collects the attributes of every heatmap cell and every tag name on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.csp = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if attributes.get("http-equiv") == "Content-Security-Policy":
            self.csp = attributes.get("content") or ""
        if "cell" in (attributes.get("class") or "").split():
            self.cells.append(attributes)


def parse(page: str) -> Cells:
    parser = Cells()
    parser.feed(page)
    return parser


# --- the page as text ---------------------------------------------------------------------


def test_one_cell_per_variant_item_with_its_data() -> None:
    cells = parse(render_html(report())).cells
    variant_items = [r for r in suite() if r["variant"] != "original"]
    assert len(cells) == len(variant_items) == 9
    got = {(c["data-test"], c["data-variant"]): c["data-score"] for c in cells}
    want = {
        (r["test"], r["variant"]): "" if r["score"] is None else f"{r['score']:.6g}"
        for r in variant_items
    }
    assert got == want


def test_rows_put_the_test_with_most_failures_first() -> None:
    cells = parse(render_html(report())).cells
    assert cells[0]["data-test"] == "tests/test_prompts.py::test_sign"


def test_cells_are_coloured_by_score() -> None:
    cells = parse(render_html(report())).cells
    worst = next(c for c in cells if c["data-score"] == "0.21")
    assert f"background-color:{score_colour(0.21)}" in (worst["style"] or "")
    skipped = next(c for c in cells if c["data-outcome"] == "skipped")
    assert "background-color" not in (skipped["style"] or "")


def test_score_colour_runs_red_to_green() -> None:
    assert score_colour(0.0) == "#d73027"
    assert score_colour(0.5) == "#fee08b"
    assert score_colour(1.0) == "#1a9850"
    assert score_colour(-1) == score_colour(0.0)
    assert score_colour(2) == score_colour(1.0)


def test_no_url_of_any_kind_and_a_csp_that_forbids_fetching() -> None:
    page = render_html(report())
    assert not re.search(r"(?i)(https?:|//[a-z0-9.-]+\.[a-z]{2,}|@import|url\()", page)
    csp = parse(page).csp
    assert "default-src 'none'" in csp
    assert "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1]


def test_untrusted_text_cannot_open_tags() -> None:
    page = render_html(report(hostile_results()))
    parsed = parse(page)
    assert "img" not in parsed.tags
    assert parsed.tags.count("script") == 2  # the JSON data and the page's own script
    assert "</script><img" not in page
    assert HOSTILE_VARIANT not in page
    assert HOSTILE_VARIANT in {c["data-variant"] for c in parsed.cells}  # escaped, round-trips


def test_embedded_data_round_trips_untrusted_text() -> None:
    page = render_html(report(hostile_results()))
    block = re.search(r'<script type="application/json" id="promptpert-data">(.*?)</script>', page)
    assert block is not None
    details = json.loads(block.group(1))
    hostile = next(d for d in details if d["variant"] == HOSTILE_VARIANT)
    assert "".join(text for _, text in hostile["outputs"][1]) == PAYLOAD


def test_word_diff_marks_only_what_changed() -> None:
    left, right = word_diff("Is the sky blue", "is the sky blue.")
    assert left == [("-", "Is"), ("=", " the sky blue")]
    assert right == [("+", "is"), ("=", " the sky blue"), ("+", ".")]


def test_word_diff_makes_changed_whitespace_visible() -> None:
    _, right = word_diff("a b", "a  b\n")
    assert ("+", "··") in right
    assert ("+", "↵\n") in right


def test_empty_run_renders() -> None:
    page = render_html(report([]))
    assert parse(page).cells == []
    assert "No variant was compared" in page


# --- the page in a real browser -------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1200",
)


def _executable(name: str, debian_path: str) -> str | None:
    return shutil.which(name) or (debian_path if Path(debian_path).is_file() else None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the browser test needs selenium (pip install selenium)"
    )
    chromium = _executable("chromium", "/usr/bin/chromium")
    chromedriver = _executable("chromedriver", "/usr/bin/chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip(
            "the browser test needs Chromium and its driver"
            " (apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver path: Selenium Manager is never asked to find or download one.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_report(browser: Any, tmp_path: Path, results: list[dict[str, Any]]) -> Any:
    path = tmp_path / "promptpert.html"
    path.write_text(render_html(report(results)), encoding="utf-8")
    browser.get_log("performance")  # drop what earlier pages logged
    browser.get(path.as_uri())
    return browser


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, 1)"


def panel(browser: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    ids = ("d-title", "d-original-prompt", "d-variant-prompt", "d-original-output")
    return {i: browser.find_element(By.ID, i).text for i in (*ids, "d-variant-output")}


def test_heatmap_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = open_report(browser, tmp_path, suite())
    cells = page.find_elements(By.CSS_SELECTOR, "td.cell")
    assert len(cells) == 9
    for cell in cells:
        score = cell.get_attribute("data-score")
        colour = cell.value_of_css_property("background-color")
        if score:
            assert colour == rgb(score_colour(float(score)))

    def channels(score: str) -> list[int]:
        cell = next(c for c in cells if c.get_attribute("data-score") == score)
        return [int(n) for n in re.findall(r"\d+", cell.value_of_css_property("background-color"))]

    worst, best = channels("0.21"), channels("1")
    assert worst[0] > worst[1] > worst[2]  # red dominates the worst score
    assert best[1] > best[0] and best[1] > best[2]  # green the best

    # The worst cell is pinned on load; hovering another shows that one.
    assert panel(page)["d-title"] == "tests/test_prompts.py::test_sign[add_period]"
    city = page.find_element(
        By.CSS_SELECTOR,
        'td.cell[data-test="tests/test_prompts.py::test_city[paris]"][data-variant="add_period"]',
    )
    ActionChains(page).move_to_element(city).perform()
    shown = panel(page)
    assert shown["d-title"] == "tests/test_prompts.py::test_city[paris-add_period]"
    assert shown["d-original-prompt"] == "Is the sky blue"
    assert shown["d-variant-prompt"] == "Is the sky blue."
    assert shown["d-original-output"] == "Yes, the sky is blue."
    assert shown["d-variant-output"] == "No."
    inserted = page.find_elements(By.CSS_SELECTOR, "#d-variant-prompt ins")
    assert [e.text for e in inserted] == ["."]

    city.click()
    assert "pinned" in (city.get_attribute("class") or "")
    bars = page.find_elements(By.CSS_SELECTOR, "svg.bars g.bar")
    assert next(b.get_attribute("data-variant") for b in bars) == "lowercase"
    page.save_screenshot(str(tmp_path / "promptpert.png"))
    assert (tmp_path / "promptpert.png").stat().st_size > 10_000


def test_untrusted_output_is_shown_as_text_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = open_report(browser, tmp_path, hostile_results())
    hostile = next(
        c
        for c in page.find_elements(By.CSS_SELECTOR, "td.cell")
        if c.get_attribute("data-variant") == HOSTILE_VARIANT
    )
    hostile.click()
    shown = panel(page)
    assert shown["d-variant-output"] == PAYLOAD
    assert shown["d-original-prompt"] == "Say <b>hi</b> & <!-- bye"
    assert page.find_elements(By.TAG_NAME, "img") == []
    assert page.execute_script("return window.__pwned === undefined")
    page.save_screenshot(str(tmp_path / "hostile.png"))


def test_the_page_makes_no_network_request(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = open_report(browser, tmp_path, hostile_results())
    for cell in page.find_elements(By.CSS_SELECTOR, "td.cell"):
        cell.click()
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0
    # Chromium's own pages (chrome://…) may still be loading in the background of a fresh
    # browser; what counts is every request a report page made, whatever its scheme.
    requested = [
        message["params"]["request"]["url"]
        for entry in page.get_log("performance")
        for message in [json.loads(entry["message"])["message"]]
        if message["method"] == "Network.requestWillBeSent"
        and message["params"].get("documentURL", "").startswith("file://")
    ]
    assert requested  # the log works: it saw the page itself
    assert all(url.startswith("file://") for url in requested), requested


def shifted_results() -> list[dict[str, Any]]:
    """The suite, with the log-probabilities of a passing variant that moved the answer."""
    from pytest_promptpert.logprobs import TokenLogprob, sensitivity

    def probe(p: float) -> tuple[TokenLogprob, ...]:
        top = ((" Yes", math.log(p)), (" No", math.log((1 - p) / 3)))
        return (TokenLogprob(" Yes", math.log(p), top),)

    found = sensitivity(probe(0.9), probe(0.3), " Yes, the sky is blue.")
    results = suite()
    for record in results:
        if record["nodeid"] == "tests/test_prompts.py::test_sign[trailing_space]":
            record["logprobs"] = found.as_json()
    return results


def test_a_log_prob_shift_is_marked_and_shown_in_the_detail_panel(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    page = open_report(browser, tmp_path, shifted_results())
    shifted = page.find_elements(By.CSS_SELECTOR, "td.cell.shifted")
    assert [c.get_attribute("data-variant") for c in shifted] == ["trailing_space"]
    assert shifted[0].text == "0.98 ↓"
    assert "early warning: log-prob shift -1.10 over 1 token" in (
        shifted[0].get_attribute("title") or ""
    )
    findings = page.find_element(By.CSS_SELECTOR, "section.findings").text
    assert "Early warning ↓: tests/test_prompts.py::test_sign[trailing_space] passed" in findings
    shifted[0].click()
    assert page.find_element(By.ID, "d-logprobs").text.splitlines() == [
        "log-prob shift of the original's first answer tokens: -1.10 over 1 token"
        " (first token ' Yes' 90% -> 30%; margin 3.30 -> 0.25)",
        "original first token: ' Yes' 90% (margin 3.30; then ' No' 3.3%)",
        "variant first token: ' Yes' 30% (margin 0.25; then ' No' 23%)",
    ]
    page.save_screenshot(str(tmp_path / "shifted.png"))
    # A cell without log-probabilities shows none.
    page.find_element(By.CSS_SELECTOR, 'td.cell[data-variant="add_period"]').click()
    assert page.find_element(By.ID, "d-logprobs").text == ""
