"""The web pages in Debian's chromium through Playwright (never a downloaded browser).

The dashboard is seeded with two runs (the quartic loss off and on); the play page plays
against the `ShuttleAI` double. Screenshots go to docs/screenshots/ for the README.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import httpx
import pytest

from razzle.server.app import create_app
from razzle.server.store import MetricsStore
from razzle.metric_names import CANONICAL_METRICS
from tests.server.conftest import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
# Chromium's sandbox refuses to start as root (CI containers); elsewhere it stays on.
CHROMIUM_ARGS = [
    "--headless",
    *(["--no-sandbox"] if os.geteuid() == 0 else []),
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
TAB_CHARTS = {
    "overview": 6,  # five fixed charts and eval_random_win_rate
    "policy": 6,
    "value": 8,  # seven metrics and the reliability diagram
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
                elo=600 * t - 150 * quartic * t * t,
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
    assert page.locator(".tables table").count() == 3  # self-play actors (none here), workers, models
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
        hints = page.locator("#empty pre").all_inner_texts()
        assert f"python train.py server.url={url}" in hints[0]
        assert f"curl -X POST {url}/training/metrics" in hints[1]
        assert ":8000" not in "".join(hints)


def test_a_run_in_its_first_iteration_shows_active_and_its_progress(page, tmp_path):
    with serve_in_thread(create_app(MetricsStore(tmp_path / "progress.db"))) as url:
        page.goto(f"{url}/dashboard")
        page.wait_for_selector("#empty:not([hidden])")
        assert page.locator("#status").text_content() == "idle"
        report = {"run": "fresh-run", "iteration": 0, "phase": "selfplay", "done": 23, "total": 64}
        httpx.post(f"{url}/training/progress", json=report, timeout=30).raise_for_status()
        page.reload()
        page.wait_for_function("document.querySelector('#status').textContent === 'active'")
        assert page.locator("#progress").inner_text() == "iteration 0: self-play 23/64 games"
        assert "iteration 0: self-play 23/64 games" in page.locator("#empty-title").inner_text()
        assert page.locator("#empty-hints").is_hidden()
        page.screenshot(path=SCREENSHOTS / "dashboard-progress.png")


@pytest.mark.parametrize("iterations_done", [1, 0], ids=["after-metrics", "before-the-first-metrics"])
def test_the_infrastructure_tab_lists_a_runs_self_play_actors(page, tmp_path, iterations_done):
    store = MetricsStore(tmp_path / "actors.db")
    if iterations_done:
        store.record_metrics("ray-run", 0, {"games": 64.0, "selfplay_games_per_s": 1.5}, None, worker="trainer")
    actors = [
        {"actor": 0, "node": "10.0.0.7", "state": "playing", "games": 40, "games_per_s": 0.8, "restarts": 0},
        {"actor": 1, "node": "10.0.0.8", "state": "restarting", "games": 24, "games_per_s": 0.7, "restarts": 2},
    ]
    report = {"run": "ray-run", "iteration": 1, "phase": "selfplay", "done": 3, "total": 64, "actors": actors}
    with serve_in_thread(create_app(store)) as url:
        httpx.post(f"{url}/training/progress", json=report, timeout=30).raise_for_status()
        page.goto(f"{url}/dashboard#infrastructure")
        table = page.locator(".tables .card", has_text="Self-play actors")
        table.locator("tbody tr", has_text="ray-run").first.wait_for()
        rows = [row.split("\t") for row in table.locator("tbody tr").all_inner_texts()]
    assert rows == [
        ["ray-run", "0", "10.0.0.7", "playing", "40", "0.80", "0"],
        ["ray-run", "1", "10.0.0.8", "restarting", "24", "0.70", "2"],
    ]


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


def test_the_plan_targets_show_on_the_charts_and_as_a_status_per_metric(page, tmp_path):
    store = MetricsStore(tmp_path / "targets.db")
    for iteration in range(13):  # early phase 0-9, mid from 10
        store.record_metrics(
            "struggling",
            iteration,
            {"illegal_penalty": 0.5, "policy_top1_accuracy": 0.10, "value_std": 0.25, "value_calibration_error": 0.1},
        )
    with serve_in_thread(create_app(store)) as url:
        page.goto(f"{url}/dashboard#overview")
        page.wait_for_selector("#target-status .chip")
        chips = {c.get_attribute("data-metric"): c for c in page.locator("#target-status .chip").all()}
        assert set(chips) == {"policy_top1_accuracy", "value_std", "value_calibration_error"}
        status = {metric: chip.get_attribute("class").split()[1] for metric, chip in chips.items()}
        assert status == {"policy_top1_accuracy": "red_flag", "value_std": "watch", "value_calibration_error": "ok"}
        assert chips["policy_top1_accuracy"].inner_text() == "struggling · policy_top1_accuracy 0.1 · red flag"
        note = page.locator(".chart-card[data-metric='policy_top1_accuracy'] .targets-note").inner_text()
        assert note.startswith("mid (iterations 10–49): target > 0.25, red flag < 0.15")
        assert "late (iterations 50+): target > 0.4, red flag < 0.3" in note
        page.click(".tabs button[data-tab='loss']")
        note = page.locator(".chart-card[data-metric='illegal_penalty'] .targets-note").inner_text()
        assert note == "early (iterations 0–9): target < 0.3, red flag > 0.8"
        assert page.locator(".chart-card[data-metric='illegal_penalty'] canvas").count() == 1
        assert page.locator(".chart-card[data-metric='lr'] .targets-note").count() == 0


def test_a_self_play_game_is_listed_and_replayed_with_its_pass_chain(page, tmp_path):
    from razzle.game.notation import Annotation, GameRecord
    from tests.server.conftest import ShuttleAI

    chain_game = ["c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3", "b3-f3", "end", "f8-g6"]
    values = [0.125, -0.05, 0.2, -0.3, 0.41, 0.6, 0.9, -0.7]
    tops = [
        (("e1-d3", 0.5), ("c1-b3", 0.25), ("b1-a3", 0.12)),
        (("f8-g6", 0.62), ("b8-c6", 0.38)),
        (("e1-f3", 1.0),),
        (("g6-f8", 0.75), ("end", 0.0)),
        (("d1-b3", 0.56), ("b3-d4", 0.25), ("e1-d3", 0.19)),
        (("b3-f3", 0.81), ("end", 0.19)),
        (("end", 1.0),),
        (("f8-g6", 1.0),),
    ]
    notes = [Annotation(value, top) for value, top in zip(values, tops)]
    short_game = ["c1-b3", "f8-g6"]  # without annotations: the replay shows no search
    folder = tmp_path / "run-a" / "replay" / "iter_0003"
    folder.mkdir(parents=True)
    records = (GameRecord(short_game), GameRecord(chain_game, annotations=notes))
    (folder / "games.txt").write_text("\n".join(record.to_text() for record in records))
    app = create_app(
        MetricsStore(tmp_path / "replay.db"),
        ai_factory=lambda _model: ShuttleAI(),
        replay_folders={"run-a": tmp_path / "run-a" / "replay"},
    )
    with serve_in_thread(app) as url:
        page.goto(url)
        page.wait_for_function("document.querySelector('#status').textContent === 'Your move.'")
        page.locator("#replay-card").wait_for(state="visible")
        assert page.locator("#replay-iteration option").all_inner_texts() == ["iteration 3 (2 games)"]
        page.wait_for_function("document.querySelectorAll('#replay-game option').length === 2")
        assert page.locator("#replay-game option").all_inner_texts() == [
            "game 1: unfinished, 2 turns",
            "game 2: unfinished, 6 turns",
        ]
        page.select_option("#replay-game", "1")
        page.click("#replay-open")
        page.wait_for_function("document.querySelector('#replay-step').textContent === 'turn 0 / 6'")
        assert page.locator(".square[data-square='d1'] .ball").count() == 1
        assert page.locator("#search-heading").inner_text() == "Search before the next turn, Player 1 to move:"
        assert page.locator("#search-value").inner_text() == "value +0.125"
        assert page.locator("#search-top li").all_inner_texts() == ["e1-d3 50%", "c1-b3 25% (played)", "b1-a3 12%"]
        suggested = page.locator(".square.suggested").evaluate_all("els => els.map(e => e.dataset.square)")
        assert sorted(suggested) == ["d3", "e1"]  # the top move's squares
        fill = page.locator("#search-value-fill")
        assert fill.evaluate("e => [e.style.left, e.style.width]") == ["50%", "6.25%"]
        for _ in range(4):
            page.click("#replay-next")
        assert page.locator("#search-value").inner_text() == "value +0.410"
        assert page.locator("#search-chain li").all_inner_texts() == [
            "in the chain, before b3-f3: +0.600 · b3-f3 81%, end 19%",
            "in the chain, before end: +0.900 · end 100%",
        ]
        page.click("#replay-prev")
        assert page.locator("#search-value").inner_text() == "value -0.300"
        assert fill.evaluate("e => [e.style.left, e.style.width, e.classList.contains('negative')]") == [
            "35%",
            "15%",
            True,
        ]
        assert page.locator("#search-top li").all_inner_texts() == ["g6-f8 75% (played)", "end 0%"]
        assert page.locator("#search-chain li").count() == 0
        page.click("#replay-next")
        page.click("#replay-next")
        assert page.locator("#replay-step").inner_text() == "turn 5 / 6"
        assert page.locator("#status").inner_text() == "run-a iteration 3, game 2: Player 1: d1-b3-f3 (pass chain)"
        path = page.locator(".square.path").evaluate_all("els => els.map(e => e.dataset.square)")
        assert sorted(path) == ["b3", "d1", "f3"]
        assert len(page.locator(".ball-path polyline").get_attribute("points").split()) == 3
        assert page.locator(".square[data-square='f3'] .ball").count() == 1
        page.screenshot(path=SCREENSHOTS / "replay.png")
        page.keyboard.press("ArrowRight")
        assert page.locator("#replay-step").inner_text() == "turn 6 / 6"
        assert page.locator(".ball-path").count() == 0  # a knight move has no ball path
        assert page.locator("#replay-search").is_hidden()  # the game's end: no search after it
        assert page.locator(".square.suggested").count() == 0
        page.click("#replay-close")
        page.wait_for_function("document.querySelector('#status').textContent === 'Your move.'")
        assert page.locator(".square.path").count() == 0
        page.select_option("#replay-game", "0")
        page.click("#replay-open")
        page.wait_for_function("document.querySelector('#replay-step').textContent === 'turn 0 / 2'")
        assert page.locator("#replay-search").is_hidden()  # a record without annotations
