"""End to end: a smoke training run with the server on posts its metrics and models."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_training_run_publishes_every_iteration(tmp_path):
    server = ServerProcess(tmp_path / "server.db", "secret").start()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "train.py",
                "experiment=smoke",
                f"hydra.run.dir={tmp_path / 'run'}",
                f"server.url={server.url}",
                "server.token=secret",
                "server.run=smoke-e2e",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = httpx.get(f"{server.url}/training/metrics", params={"run": "smoke-e2e"}).json()
        assert metrics["total"] == 2
        entries = sorted(metrics["metrics"], key=lambda entry: entry["iteration"])
        assert [entry["iteration"] for entry in entries] == [0, 1]
        for entry in entries:
            assert 0 <= entry["legal_mass"] <= 1 and entry["loss_total"] > 0
            assert "eval_random_win_rate" in entry and "x_train_loss_total" in entry
            phases = ("selfplay_seconds", "training_seconds", "evaluation_seconds")
            assert entry["iteration_seconds"] == pytest.approx(sum(entry[name] for name in phases))
        models = httpx.get(f"{server.url}/training/models").json()
        versions = sorted(model["version"] for model in (models["models"] if isinstance(models, dict) else models))
        assert versions == ["iter_0000", "iter_0001"]
        download = httpx.get(f"{server.url}/training/models/iter_0001/download")
        assert download.status_code == 200
        assert download.content == (tmp_path / "run" / "models" / "iter_0001.pt").read_bytes()
    finally:
        server.stop()
