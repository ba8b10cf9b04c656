"""The self-play loop (razzle/train/loop.py) end to end: `python train.py` runs it, and a run
stopped at any stage of an iteration resumes with nothing lost and nothing counted twice."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from razzle.game import Rules
from razzle.metric_names import CANONICAL_METRICS, ITERATION_METRICS
from razzle.model.io import load_model_file
from razzle.search import SearchConfig
from razzle.search.streams import game_seeds
from razzle.selfplay.backend import shard_seed
from razzle.selfplay.games import SelfPlayConfig
from razzle.selfplay.replay import ReplayStore
from razzle.train.data import SampleDataModule
from razzle.train.loop import AlphaZeroLoop, training_draws, window_size
from razzle.server.store import MetricsStore
from razzle.train.run import train as train_in_process
from tests.train.probes import StopRun

ROOT = Path(__file__).resolve().parents[2]
# Two iterations of two 8-turn games at 2 simulations, two epochs each, baselines every iteration.
TINY = (
    "experiment=smoke",
    "rules.max_turns=8",
    "search.simulations=2",
    "selfplay.games=2",
    "selfplay.parallel=2",
    "selfplay.iterations=2",
    "selfplay.epochs_per_iteration=2",
    "selfplay.eval_every=1",
    "selfplay.eval_games=2",
    "data.batch_size=16",
    "data.val_fraction=0.2",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
)


def train(*overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def compose_run(run: Path, *overrides: str):
    paths = [f"paths.root_dir={run.parent}", f"paths.output_dir={run}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=[*paths, *TINY, *overrides])


def stop_at(iteration: int, phase: str, done: int, sigkill: bool = False) -> list[str]:
    return [
        "+handlers.stop._target_=tests.train.probes.StopAt",
        f"+handlers.stop.iteration={iteration}",
        f"+handlers.stop.phase={phase}",
        f"+handlers.stop.done={done}",
        f"+handlers.stop.sigkill={sigkill}",
    ]


def metric_rows(run: Path) -> list[dict[str, str]]:
    """Rows of every CSV logger version of the run (a resumed run starts a new version)."""
    return [row for path in sorted(run.glob("csv/version_*/metrics.csv")) for row in csv.DictReader(path.open())]


def assert_complete(run: Path, iterations: int = 2, epochs_per_iteration: int = 2) -> None:
    """Every iteration once: one replay folder, one model, one report, one CSV row, one
    metrics.db row, and every training epoch once."""
    numbers = list(range(iterations))
    assert ReplayStore(run / "replay").iterations() == numbers
    assert sorted(p.name for p in (run / "models").iterdir()) == [f"iter_{i:04d}.pt" for i in numbers]
    state = json.loads((run / "loop_state.json").read_text())
    assert state["iteration"] == iterations and state["epoch"] == iterations * epochs_per_iteration
    assert [report["iteration"] for report in state["history"]] == numbers
    rows = metric_rows(run)
    assert sorted(float(row["iteration"]) for row in rows if row.get("iteration")) == numbers
    trained = sorted(int(row["epoch"]) for row in rows if row.get("train/loss_total"))
    assert trained == list(range(iterations * epochs_per_iteration))
    store = MetricsStore(run / "metrics.db")
    entries, total = store.list_metrics()
    store.close()
    assert total == iterations and sorted(entry["iteration"] for entry in entries) == numbers
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == iterations * epochs_per_iteration - 1
    assert_every_game_once(run)


def assert_every_game_once(run: Path) -> None:
    """Every game of the run, stored once (no seed twice), finished, and every iteration
    the same number of finished games; with carry-over, the games stored are exactly those
    of each shard's stream begun before the last checkpoint but the ones in flight."""
    store = ReplayStore(run / "replay")
    records = [store.records(i) for i in store.iterations()]
    assert all(record.position().is_terminal for iteration in records for record in iteration)
    assert len({len(iteration) for iteration in records}) == 1
    seeds = [record.headers["Seed"] for iteration in records for record in iteration]
    assert len(seeds) == len(set(seeds))
    sessions = store.sessions(store.iterations()[-1])
    if sessions is None:
        return
    game_of = {}
    for index, saved in sessions.items():
        seeds_of_stream = game_seeds(saved["seed"], torch.arange(saved["next_game"])).tolist()
        game_of.update({str(seed): (index, n) for n, seed in enumerate(seeds_of_stream)})
    stored = sorted(game_of[seed] for seed in seeds)
    begun = [
        (i, n) for i, saved in sorted(sessions.items()) for n in range(saved["next_game"]) if n not in saved["restart"]
    ]
    assert stored == begun, "a game of a shard's stream was lost or stored twice"


def test_a_run_reports_every_iteration_once_with_every_name(tmp_path):
    run = tmp_path / "run"
    train_in_process(compose_run(run))
    assert_complete(run)
    header = metric_rows(run)[0].keys()
    missing = [name for name in (*CANONICAL_METRICS, *ITERATION_METRICS) if name not in header]
    assert missing == [], f"metrics CSV lacks {missing}"
    store = MetricsStore(run / "metrics.db")
    entries, _ = store.list_metrics()
    store.close()
    for entry in entries:
        assert entry["iteration_seconds"] == pytest.approx(
            entry["selfplay_seconds"] + entry["training_seconds"] + entry["evaluation_seconds"]
        )
        assert "x_train_loss_total" in entry and "eval_random_win_rate" in entry
    _, metadata = load_model_file(run / "models" / "iter_0001.pt")
    assert metadata["iteration"] == 1 and metadata["epoch"] == 4
    assert (run / "curves.png").stat().st_size > 0
    # Carry-over is the default: each replay folder holds the shard's session after it.
    assert [list(ReplayStore(run / "replay").sessions(i)) for i in (0, 1)] == [[0], [0]]


def test_without_carry_over_each_iteration_is_a_draining_batch(tmp_path):
    run = tmp_path / "run"
    train_in_process(compose_run(run, "selfplay.iterations=1", "selfplay.eval_every=0", "selfplay.carry_over=false"))
    store = ReplayStore(run / "replay")
    assert store.sessions(0) is None
    expected = game_seeds(shard_seed(0, 0, 0), torch.arange(2)).tolist()
    assert [int(record.headers["Seed"]) for record in store.records(0)] == expected


def test_a_replay_ratio_trains_each_iteration_on_its_new_positions_times_the_ratio(tmp_path):
    run = tmp_path / "run"
    ratio, batch_size = 3, 16
    train_in_process(compose_run(run, f"selfplay.samples_per_position={ratio}", "loss.value_target=mix"))
    assert_complete(run, epochs_per_iteration=1)
    history = json.loads((run / "loop_state.json").read_text())["history"]
    steps = [history[0]["global_step"], history[1]["global_step"] - history[0]["global_step"]]
    for iteration, taken in enumerate(steps):
        # The iteration's training positions: its shard alone, split as the run split it.
        alone = tmp_path / f"alone_{iteration}" / f"iter_{iteration:04d}"
        alone.mkdir(parents=True)
        shutil.copy(run / "replay" / f"iter_{iteration:04d}" / "samples.pt", alone)
        data = SampleDataModule(str(alone.parent), batch_size=batch_size, val_fraction=0.2)
        data.load_window()
        assert taken * batch_size == training_draws(data.newest_train_samples, ratio, batch_size)
        assert taken == max(1, round(data.newest_train_samples * ratio / batch_size))


def test_training_draws_are_whole_batches():
    assert training_draws(1000, 4, 512) == 8 * 512  # 7.8 batches, rounded
    assert training_draws(10, 1, 512) == 512  # at least one batch
    assert training_draws(300, 0.5, 50) == 150


def test_a_growing_window_holds_its_minimum_plus_the_growth_times_the_positions_played(tmp_path):
    run, probe = tmp_path / "run", tmp_path / "probe"
    growth = ("selfplay.window_min=5", "selfplay.window_growth=0.5", "data.val_fraction=0")
    record = ("+callbacks.probe._target_=tests.train.probes.RecordBatches", f"+callbacks.probe.dirpath={probe}")
    train_in_process(compose_run(run, *growth, *record))
    store = ReplayStore(run / "replay")
    played = 0
    for iteration, first_epoch in ((0, 0), (1, 2)):  # two epochs per iteration
        played += store.stats(iteration)["positions"]
        window = json.loads((probe / f"rank0_epoch{first_epoch}.json").read_text())["window"]
        assert len(window) == window_size(40000, 5, 0.5, played) == 5 + int(0.5 * played) < played


def test_the_window_grows_up_to_its_cap():
    assert window_size(100, 10, 0.5, 60) == 40
    assert window_size(100, 10, 0.5, 1000) == 100
    assert window_size(None, 10, 2.0, 1000) == 2010


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"window_min": 0}, "selfplay.window_min must be an integer >= 1 or null"),
        ({"window_min": 2.5}, "selfplay.window_min"),
        ({"window_min": 10, "window_growth": -1}, "selfplay.window_growth must be a number >= 0"),
    ],
)
def test_a_bad_growing_window_is_named(settings, message):
    with pytest.raises(ValueError, match=message):
        AlphaZeroLoop("run", Rules(), SearchConfig(), SelfPlayConfig(), iterations=1, **settings)


@pytest.mark.parametrize("ratio", [0, -1, float("inf"), "often", True])
def test_a_bad_replay_ratio_is_named(ratio):
    with pytest.raises(ValueError, match="selfplay.samples_per_position must be a number > 0 or null"):
        AlphaZeroLoop("run", Rules(), SearchConfig(), SelfPlayConfig(), iterations=1, samples_per_position=ratio)


@pytest.mark.parametrize(
    ("phase", "done"),
    # training 2: in the iteration's second epoch, after the first one's checkpoint
    [("selfplay", 1), ("training", 2), ("evaluation", 0)],
    ids=["mid-selfplay", "mid-training", "mid-export-and-evaluation"],
)
def test_a_run_stopped_in_an_iteration_resumes_without_losing_or_repeating(tmp_path, phase, done):
    """Three iterations, stopped in the second: with carry-over (the default) the third
    continues the shard's stream from the second's saved session (or a replayed second
    from the first's)."""
    run = tmp_path / "run"
    with pytest.raises(StopRun):
        train_in_process(compose_run(run, "selfplay.iterations=3", *stop_at(1, phase, done)))
    state = json.loads((run / "loop_state.json").read_text())
    assert state["iteration"] == 1 and [report["iteration"] for report in state["history"]] == [0]
    played = ReplayStore(run / "replay").iterations()
    assert played == ([0] if phase == "selfplay" else [0, 1])
    games_before = (run / "replay" / "iter_0001" / "games.txt").read_text() if phase != "selfplay" else None

    train_in_process(compose_run(run, "selfplay.iterations=3", f"resume={run}"))
    assert_complete(run, iterations=3)
    if games_before is not None:  # iteration 1 was not played again
        assert (run / "replay" / "iter_0001" / "games.txt").read_text() == games_before


def test_a_new_run_refuses_a_folder_that_holds_one(tmp_path):
    from razzle.train.loop import LoopError

    run = tmp_path / "run"
    train_in_process(compose_run(run, "selfplay.iterations=1", "selfplay.eval_every=0"))
    with pytest.raises(LoopError, match="already holds a run"):
        train_in_process(compose_run(run, "selfplay.iterations=1"))


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "done"), [("selfplay", 1), ("training", 2), ("evaluation", 0)])
def test_a_killed_train_py_resumes(tmp_path, phase, done):
    """A real SIGKILL of the training process at each stage of iteration 1, then resume."""
    run = tmp_path / "run"
    overrides = [f"hydra.run.dir={run}", *TINY[1:]]
    killed = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", *overrides, *stop_at(1, phase, done, sigkill=True)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = train(f"resume={run}", *TINY[1:])
    assert "learning curves" in resumed.stdout
    assert_complete(run)


@pytest.mark.slow
def test_smoke_run_then_resume_for_more_iterations(tmp_path):
    run = tmp_path / "run"
    first = train(f"hydra.run.dir={run}", "selfplay.iterations=1")
    assert "iter" in first.stdout and "learning curves" in first.stdout
    assert sorted(p.name for p in (run / "models").iterdir()) == ["iter_0000.pt"]
    header = metric_rows(run)[0].keys()
    missing = [name for name in CANONICAL_METRICS if name not in header]
    assert missing == [], f"metrics CSV lacks {missing}"

    train(f"resume={run}", "selfplay.iterations=2")
    assert_complete(run, iterations=2, epochs_per_iteration=1)


def test_resume_needs_a_run_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", f"resume={tmp_path / 'nothing'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "not a run folder" in result.stderr and "nothing" in result.stderr


@pytest.mark.slow
def test_selfplay_py_writes_games_with_a_model(tmp_path):
    run = tmp_path / "run"
    train(f"hydra.run.dir={run}", "selfplay.iterations=1", "selfplay.eval_every=0")
    result = subprocess.run(
        [
            sys.executable,
            "selfplay.py",
            f"model_file={run / 'models' / 'iter_0000.pt'}",
            f"out_dir={tmp_path / 'games'}",
            f"hydra.run.dir={tmp_path / 'worker'}",
            "games=3",
            "parallel=3",
            "search.simulations=4",
            "rules.max_turns=20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    store = ReplayStore(tmp_path / "games")
    assert store.iterations() == [0]
    assert len(store.records(0)) == 3
    assert "3 games" in result.stdout
