"""`python train.py` runs the AlphaZero loop end to end, and a stopped run resumes."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from razzle.model.io import load_model_file
from razzle.selfplay.replay import ReplayStore
from razzle.train.metrics import CANONICAL_METRICS

ROOT = Path(__file__).resolve().parents[2]


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


def metric_rows(run: Path) -> list[dict[str, str]]:
    """Rows of every CSV logger version of the run (a resumed run starts a new version)."""
    return [row for path in sorted(run.glob("csv/version_*/metrics.csv")) for row in csv.DictReader(path.open())]


@pytest.mark.slow
def test_smoke_run_then_resume(tmp_path):
    run = tmp_path / "run"
    first = train(f"hydra.run.dir={run}", "selfplay.iterations=1")
    assert "iter" in first.stdout and "learning curves" in first.stdout

    assert sorted(p.name for p in (run / "models").iterdir()) == ["iter_0000.pt"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert ReplayStore(run / "replay").iterations() == [0]
    _, metadata = load_model_file(run / "models" / "iter_0000.pt")
    assert metadata["iteration"] == 0
    header = metric_rows(run)[0].keys()
    missing = [name for name in CANONICAL_METRICS if name not in header]
    assert missing == [], f"metrics CSV lacks {missing}"
    assert (run / "curves.png").stat().st_size > 0

    train(f"resume={run}", "selfplay.iterations=2")
    assert sorted(p.name for p in (run / "models").iterdir()) == ["iter_0000.pt", "iter_0001.pt"]
    assert ReplayStore(run / "replay").iterations() == [0, 1]
    iterations = sorted({float(row["iteration"]) for row in metric_rows(run) if row.get("iteration")})
    assert iterations == [0.0, 1.0]


def test_resume_needs_a_run_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", f"resume={tmp_path / 'nothing'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "no checkpoint" in result.stderr and "nothing" in result.stderr


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
