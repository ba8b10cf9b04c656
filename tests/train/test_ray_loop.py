"""The loop with self-play on Ray actors, as a user runs it: `python train.py
selfplay.backend=ray` starts a local Ray cluster, and its games are the local backend's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from razzle.model.samples import Samples
from razzle.selfplay.replay import ReplayStore
from tests.train.test_loop import metric_rows

ROOT = Path(__file__).resolve().parents[2]
ONE_TINY_ITERATION = (
    "experiment=smoke",
    "rules.max_turns=8",
    "search.simulations=2",
    "selfplay.games=4",
    "selfplay.parallel=2",
    "selfplay.iterations=1",
    "selfplay.eval_every=0",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
)


def run_train(*overrides: str, timeout: int = 600, threads: int | None = None) -> subprocess.CompletedProcess:
    """threads: torch's threads in the run (OMP_NUM_THREADS); by default the machine's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, "train.py", *overrides], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_the_ray_settings_compose():
    result = run_train(
        "selfplay.backend=ray",
        "selfplay.actors=6",
        "ray.address=auto",
        "ray.num_gpus_per_actor=0.33",
        "selfplay.mode=async",
        "selfplay.max_staleness=2",
        "--cfg",
        "job",
        "--resolve",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    expected = ("backend: ray", "actors: 6", "address: auto", "num_gpus_per_actor: 0.33", "mode: async", "max_staleness: 2")
    for line in expected:
        assert line in text, line


@pytest.mark.slow
def test_ray_actors_write_the_local_backends_games(tmp_path):
    """Two iterations with carry-over (the default): the games unfinished in the first go on
    in the second, on the actor that holds their shard, as they do in the local process."""
    local, remote = tmp_path / "local", tmp_path / "ray"
    two = ("selfplay.iterations=2", "selfplay.epochs_per_iteration=1", "selfplay.games=6")  # 3 a shard, 2 at a time
    # Both runs compute with one thread, as the actors (one CPU each) do: oneDNN's
    # convolutions may round the last bits differently with another thread count, and the
    # games (and the training between the iterations) must be equal.
    played_here = run_train(*ONE_TINY_ITERATION, *two, f"hydra.run.dir={local}", "selfplay.shards=2", threads=1)
    assert played_here.returncode == 0, played_here.stderr[-3000:]
    actors_file = tmp_path / "actors.json"
    played_there = run_train(
        *ONE_TINY_ITERATION,
        *two,
        f"hydra.run.dir={remote}",
        "selfplay.backend=ray",
        "selfplay.actors=2",
        "ray.num_cpus=2",
        "+handlers.actors._target_=tests.train.probes.RecordActors",
        f"+handlers.actors.path={actors_file}",
        threads=1,
    )
    assert played_there.returncode == 0, played_there.stderr[-3000:]

    for iteration in (0, 1):
        folders = [ReplayStore(run / "replay").folder(iteration) for run in (local, remote)]
        here, there = (Samples.load(folder / "samples.pt") for folder in folders)
        assert all(torch.equal(getattr(here, name), getattr(there, name)) for name in vars(here))
        for name in ("games.txt", "sessions.json"):
            assert (folders[0] / name).read_text() == (folders[1] / name).read_text(), name

    actors = json.loads(actors_file.read_text())
    assert [actor["actor"] for actor in actors] == [0, 1]
    assert sum(actor["games"] for actor in actors) == 12 and all(actor["restarts"] == 0 for actor in actors)
    assert "self-play iteration 1 on Ray: actor 0 on" in played_there.stderr + played_there.stdout
    rows = [row for row in metric_rows(remote) if row.get("iteration")]
    assert len(rows) == 2
    assert all(float(row["selfplay_actor_restarts"]) == 0.0 for row in rows)
    assert all(float(row["selfplay_stale_games_dropped"]) == 0.0 for row in rows)


@pytest.mark.slow
def test_an_async_ray_run_keeps_only_games_of_fresh_networks(tmp_path):
    run = tmp_path / "async"
    result = run_train(
        *ONE_TINY_ITERATION,
        f"hydra.run.dir={run}",
        "selfplay.iterations=3",
        "selfplay.backend=ray",
        "selfplay.actors=2",
        "selfplay.mode=async",
        "selfplay.max_staleness=0",
        "ray.num_cpus=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    store = ReplayStore(run / "replay")
    assert store.iterations() == [0, 1, 2]
    for iteration in (0, 1, 2):
        records = store.records(iteration)
        assert len(records) == 4
        # max_staleness=0: every game kept was played by the iteration's own network
        assert {(r.headers["Iteration"], r.headers["Models"]) for r in records} == {(str(iteration), str(iteration))}
    rows = [row for row in metric_rows(run) if row.get("iteration")]
    dropped = [float(row["selfplay_stale_games_dropped"]) for row in rows]
    assert len(rows) == 3 and dropped[0] == 0.0 and all(d >= 0 and d % 2 == 0 for d in dropped)
