"""The web pages in Debian's chromium through Playwright (never a downloaded browser).

The dashboard is seeded with two runs (the quartic loss off and on); the play page plays
against the `ShuttleAI` double. Screenshots go to docs/screenshots/ for the README.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from razzle.server.app import create_app
from razzle.server.store import MetricsStore
from razzle.metric_names import CANONICAL_METRICS
from tests.server.conftest import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
TAB_CHARTS = {
    "overview": 5,  # four fixed charts and eval_random_win_rate
    "policy": 6,
    "value": 6,  # five metrics and the reliability diagram
    "pass": 5,
    "loss": 7,
    "infrastructure": 5,
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]


def seed(store: MetricsStore, model_file: Path) -> None:
    """Two runs of 30 iterations with every metric the dashboard draws, smooth curves."""
    for run, quartic in (("quartic-off", 0.0), ("quartic-on", 1.0)):
        for iteration in range(30):
            t = iteration / 29
            metrics = {name: 0.5 + 0.3 * math.sin(3 * t + k + quartic) for k, name in enumerate(CANONICAL_METRICS)}
            metrics.update(
                loss_total=3.2 * math.exp(-2 * t) + 0.6 + 0.2 * quartic,
                value_loss_quartic=0.4 * math.exp(-3 * t) * quartic,
                policy_top1_accuracy=0.25 + 0.4 * t - 0.05 * quartic,
                policy_ebf=12 - 6 * t,
                value_calibration_error=0.2 * math.exp(-2 * t) + 0.03 * (1 - quartic),
                lr=0.02 if iteration < 20 else 0.002,
                games=64,
                positions=64 * 60,
                iteration_seconds=95 + 10 * math.sin(iteration),
                eval_random_win_rate=min(1.0, 0.5 + t),
            )
            slope = 0.5 + 0.4 * t if quartic else 1.3 - 0.2 * t  # under- and overconfident
            reliability = [
                (-0.9 + 0.2 * b, max(-1.0, min(1.0, (-0.9 + 0.2 * b) * slope)), 20 + 5 * b) for b in range(10)
            ]
            store.record_metrics(run, iteration, metrics, reliability, worker=f"trainer-{run}")
        store.add_model(run, "iter_0029", 29, model_file, worker=f"trainer-{run}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def seeded(play_server, model_file):
    url, _ai, store = play_server
    seed(store, model_file)
    return url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def test_the_dashboard_draws_every_tab_with_both_runs(page, seeded):
    page.goto(f"{seeded}/dashboard")
    page.wait_for_selector(".chart-card canvas")
    assert page.locator("#stat-runs").inner_text() == "2"
    assert page.locator("#stat-iterations").inner_text() == "60"
    assert page.locator(".run-toggle").all_inner_texts() == ["quartic-off", "quartic-on"]
    for tab, charts in TAB_CHARTS.items():
        page.click(f".tabs button[data-tab='{tab}']")
        page.wait_for_selector(".chart-card canvas")
        assert page.locator(".chart-card").count() == charts, tab
        assert page.locator(".chart-card canvas").count() == charts, tab
        assert page.locator(".no-data").count() == 0, tab
        legend = page.locator(".chart-card").first.locator(".u-legend").inner_text()
        assert "quartic-off" in legend and "quartic-on" in legend, tab
        if tab == "overview":
            page.screenshot(path=SCREENSHOTS / "dashboard.png", full_page=True)
    assert page.locator(".tables table").count() == 2
    assert page.locator(".tables a[href*='download']").count() == 2
    page.click(".tabs button[data-tab='value']")
    page.wait_for_selector(".chart-card[data-metric='reliability'] canvas")
    page.screenshot(path=SCREENSHOTS / "dashboard-value.png", full_page=True)


def test_the_run_toggle_iteration_range_and_pause_work(page, seeded):
    page.goto(f"{seeded}/dashboard#loss")
    page.wait_for_selector(".chart-card canvas")
    page.locator(".run-toggle input").first.uncheck()
    legend = page.locator(".chart-card[data-metric='loss_total'] .u-legend").inner_text()
    assert "quartic-on" in legend and "quartic-off" not in legend
    page.fill("#from", "40")
    assert page.locator(".no-data").count() == page.locator(".chart-card").count()
    page.fill("#from", "")
    page.click("#pause")
    assert page.locator("#pause").inner_text() == "Resume"


def test_an_empty_store_says_no_metrics_available(page, tmp_path):
    with serve_in_thread(create_app(MetricsStore(tmp_path / "empty.db"))) as url:
        page.goto(f"{url}/dashboard")
        page.wait_for_selector("#empty:not([hidden])")
        assert "No metrics available" in page.locator("#empty").inner_text()
        assert page.locator(".chart-card").count() == 0


def test_t_toggles_the_dashboard_over_the_game(page, seeded):
    page.goto(seeded)
    page.wait_for_function("document.querySelector('#status').textContent === 'Your move.'")
    page.keyboard.press("t")
    overlay = page.locator("#dashboard-overlay")
    overlay.wait_for(state="visible")
    frame = page.frame_locator("#dashboard-frame")
    frame.locator(".chart-card canvas").first.wait_for()
    frame.locator("body").press("t")
    overlay.wait_for(state="hidden")
    page.keyboard.press("t")
    overlay.wait_for(state="visible")
    page.keyboard.press("T")
    overlay.wait_for(state="hidden")
    page.fill("#move-input", "t")  # typing a T in the move box does not open it
    assert not overlay.is_visible()
    page.goto(f"{seeded}/dashboard")
    page.wait_for_selector(".tabs")
    page.keyboard.press("t")
    page.wait_for_url(f"{seeded}/")


def record(page) -> list[str]:
    return [token for row in page.locator("#record li").all() for token in row.locator("span").all_inner_texts()]


def click(page, square: str) -> None:
    page.click(f".square[data-square='{square}']")


def test_play_a_move_an_illegal_attempt_and_a_whole_pass_chain(page, seeded):
    page.goto(seeded)
    page.wait_for_function("document.querySelector('#status').textContent === 'Your move.'")
    page.click("#new-game")
    page.wait_for_function("document.querySelector('#status').textContent === 'Your move.'")

    click(page, "c1")
    assert page.locator(".square.target").count() == 4  # c1-a2, c1-b3, c1-d3, c1-e2
    click(page, "b3")
    page.wait_for_function("document.querySelectorAll('#record li span').length === 2")
    assert record(page) == ["c1-b3", "f8-g6"]
    assert page.locator(".square.last").count() == 2  # the AI's move is marked

    click(page, "b1")
    click(page, "b2")
    message = page.locator("#message.error")
    message.wait_for()
    assert "not a knight's jump" in message.inner_text()
    assert record(page) == ["c1-b3", "f8-g6"]

    click(page, "e1")
    click(page, "f3")
    page.wait_for_function("document.querySelectorAll('#record li span').length === 4")
    click(page, "d1")  # the ball: its passes are offered
    assert sorted(page.locator(".square.target").evaluate_all("els => els.map(e => e.dataset.square)")) == ["b3", "f3"]
    click(page, "b3")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Pass again')")
    assert page.locator("#end-turn").is_enabled()
    assert page.locator(".square.selected").get_attribute("data-square") == "b3"
    page.screenshot(path=SCREENSHOTS / "play.png")
    click(page, "f3")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Pass again')")
    page.click("#end-turn")
    page.wait_for_function("document.querySelectorAll('#record li span').length === 6")
    assert record(page)[4:] == ["d1-b3-f3", "f8-g6"]
    assert page.locator("#status").inner_text() == "Your move."
