"""The store on its own: what the API tests cannot easily reach."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from razzle.metric_names import CANONICAL_METRICS, KNOWN_METRICS
from razzle.server.names import metric_name_problem
from razzle.server.store import (
    IncomingFile,
    MetricsStore,
    StoreInputError,
    database_url,
    default_models_dir,
    iso_time,
)

WEB = Path(__file__).parents[2] / "web"
VENDOR = Path(__file__).parents[2] / "razzle" / "server" / "static" / "vendor" / "uplot"


@pytest.fixture
def store(tmp_path):
    store = MetricsStore(tmp_path / "metrics.db")
    yield store
    store.close()


def test_every_canonical_metric_name_is_accepted():
    assert set(CANONICAL_METRICS) <= KNOWN_METRICS
    assert all(metric_name_problem(name) is None for name in CANONICAL_METRICS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) for name in KNOWN_METRICS)


def test_one_bad_value_refuses_the_whole_iteration(store):
    with pytest.raises(StoreInputError) as refused:
        store.record_metrics("run", 0, {"loss_total": 1.0, "lr": float("inf"), "typo_name": 2.0})
    assert len(refused.value.problems) == 2 and "'lr' must be finite" in str(refused.value)
    assert store.list_metrics() == ([], 0)


def test_idle_or_active_follows_the_runs_own_pace(store, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    for iteration in range(4):
        store.record_metrics("slow", iteration, {"loss_total": 1.0})
        clock[0] += 1200  # 20-minute iterations
    assert store.activity(now=clock[0])["status"] == "active"  # 20 minutes after the last update
    assert store.activity(now=clock[0])["active_window_s"] == 3600
    assert store.activity(now=clock[0] + 3600)["status"] == "idle"
    assert store.activity(now=clock[0] + 3600)["last_update"] == iso_time(1_000_000.0 + 3 * 1200)


def test_a_file_that_fails_the_check_leaves_no_file_behind(store, tmp_path):
    bad = tmp_path / "iter_0001.pt"
    bad.write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(StoreInputError, match="not a razzle model file"):
        store.add_model("run", "iter_0001", 1, bad)
    assert list(store.models_dir.iterdir()) == [] and store.list_models() == []


def test_same_content_is_kept_once(store, model_file):
    first, created = store.add_model("a", "iter_0003", 3, model_file)
    second, _ = store.add_model("b", "iter_0003", 3, model_file)
    assert created and first.sha256 == second.sha256 == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert [p.name for p in store.models_dir.iterdir()] == [f"{first.sha256}.pt"]
    path, info = store.model_file("iter_0003")
    assert info.run == "b" and path.read_bytes() == model_file.read_bytes()


def test_leftovers_of_killed_uploads_are_removed_at_the_next_start(tmp_path):
    models = tmp_path / "metrics-models"
    models.mkdir()
    uploader = subprocess.Popen(
        [sys.executable, "-c", DYING_UPLOAD, str(models)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    dead = Path(uploader.stdout.readline().strip())
    uploader.send_signal(signal.SIGKILL)
    uploader.wait()
    assert dead.exists()
    with IncomingFile(models) as live:  # an upload still in progress in another store
        live.copy_and_hash(io.BytesIO(b"still arriving"))
        MetricsStore(tmp_path / "metrics.db", models).close()
        assert not dead.exists() and live.path.exists()
    assert list(models.iterdir()) == []


DYING_UPLOAD = """
import sys, time
from pathlib import Path
from razzle.server.store import IncomingFile
incoming = IncomingFile(Path(sys.argv[1])).__enter__()
incoming.copy_and_hash(open(sys.executable, "rb"))
print(incoming.path, flush=True)
time.sleep(600)
"""


def test_database_locations(tmp_path):
    assert database_url("postgresql://u@host/razzle") == "postgresql://u@host/razzle"
    assert database_url(tmp_path / "m.db") == f"sqlite:///{tmp_path / 'm.db'}"
    assert default_models_dir(f"sqlite:///{tmp_path / 'm.db'}") == tmp_path / "m-models"


def test_the_shipped_chart_library_is_the_locked_npm_build():
    source = (VENDOR / "SOURCE").read_text().splitlines()
    lock = (WEB / "package-lock.json").read_text()
    version = re.match(r"uplot (\S+) from the npm registry", source[0]).group(1)
    assert f'"node_modules/uplot": {{\n      "version": "{version}"' in lock
    for line in source[1:]:
        digest, name = line.split()
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
