"""The trainer's side: the background client and the publisher (a handler of the training
loop), against real servers. The metrics of a pretend iteration come from the real network, loss and
torchmetrics code on real positions."""

from __future__ import annotations

import logging
import math
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from razzle.game.actions import NUM_ACTIONS
from razzle.game.engine import initial_state, random_actions, step
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from razzle.model.planes import encode_states
from razzle.model.samples import Samples
from razzle.server.client import TrainingClient
from razzle.server.publisher import TrainingPublisher
from razzle.server.store import MetricsStore
from razzle.train.loss import CompositeLoss
from razzle.train.metrics import learning_metrics
from razzle.train.report import IterationHandler, IterationReport
from tests.server.conftest import free_port


def pretend_iteration(batch: int = 48) -> tuple[dict[str, float], dict]:
    """(metrics, reliability) of one iteration: a tiny network on positions from random play,
    scored by the composite loss and the learning metrics against made-up search targets."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    state = initial_state(batch)
    for _ in range(8):
        state = step(state, random_actions(state, generator))
    legal = torch.zeros(batch, NUM_ACTIONS, dtype=torch.bool)
    legal.scatter_(1, state.actions, state.legal)
    target = torch.rand(batch, NUM_ACTIONS, generator=generator).masked_fill(~legal, 0)
    target /= target.sum(1, keepdim=True)
    outcome = torch.randint(-1, 2, (batch,), generator=generator).float()
    samples = Samples(encode_states(state), legal, target, outcome, torch.rand(batch, generator=generator), state.turn, outcome)
    with torch.no_grad():
        output = RazzleNet.of_size("tiny").eval()(samples.planes)
        losses = CompositeLoss(quartic=1.0)(output, samples)
    metrics = learning_metrics()
    metrics.update(
        logits=output.policy,
        legal=legal,
        target_policy=target,
        value=output.value,
        outcome=outcome,
        search_value=samples.search_value,
        losses=losses,
        batch_size=batch,
    )
    values = {name: float(value) for name, value in metrics.compute().items()}
    values.update(lr=0.02, games=batch, positions=batch * 8)
    return values, metrics["value_calibration_error"].reliability()


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_the_publisher_posts_real_metrics_and_the_model_to_the_server(start_server, tmp_path, capsys):
    server = start_server()
    metrics, reliability = pretend_iteration()
    model_path = save_model_file(RazzleNet.of_size("tiny"), tmp_path / "iter_0001.pt", {"iteration": 1})
    publisher = TrainingPublisher(run="smoke", url=server.url + "/")
    publisher.start()
    publisher.publish_iteration(
        None, 1, {**metrics, "policy_loss": torch.tensor(metrics["policy_loss"])}, model_path, reliability
    )
    publisher.close()
    assert f"dashboard: {server.url}/dashboard" in capsys.readouterr().out

    with server.client() as client:
        latest = client.get("/training/metrics/latest", params={"run": "smoke"}).json()["metrics"]
        model = client.get("/training/models/latest").json()["model"]
        downloaded = client.get(model["download_url"]).content
    expected = {name: value for name, value in metrics.items() if not math.isnan(value)}
    assert {name: latest[name] for name in expected} == pytest.approx(expected)
    assert "value_loss_quartic" in latest and "policy_top1_accuracy" in latest
    counts = [int(c) for c in reliability["count"]]
    assert [b["count"] for b in latest["reliability"]] == counts and sum(counts) == 48
    assert all((b["mean_value"] is None) == (b["count"] == 0) for b in latest["reliability"])
    assert (model["run"], model["version"], model["iteration"]) == ("smoke", "iter_0001", 1)
    assert downloaded == model_path.read_bytes()


def test_the_client_buffers_while_the_server_is_down_and_says_so_once(start_server, tmp_path, caplog):
    port = free_port()
    client = TrainingClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.05, max_backoff=0.3)
    caplog.set_level(logging.WARNING, logger="razzle.server.client")
    for iteration in range(6):
        client.post_metrics("buffered", iteration, {"loss_total": 1.0 + iteration})
    assert client.pending > 0
    wait_for(lambda: "unreachable" in caplog.text)
    time.sleep(1.0)  # several more probes fail meanwhile; none of them is logged again

    server = start_server(port=port)
    assert client.flush(60) and client.close() == 0
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(unreachable) == 1 and "buffering" in unreachable[0].getMessage() and len(back) == 1
    with server.client() as http:
        entries = http.get("/training/metrics", params={"run": "buffered"}).json()["metrics"]
    assert [(e["iteration"], e["loss_total"]) for e in entries] == [(i, 1.0 + i) for i in range(6)]


def test_the_client_drops_what_the_server_refuses_and_carries_on(shared_server, caplog):
    client = TrainingClient(shared_server.url, backoff=0.05)
    client.post_metrics("refused", 0, {"not_a_metric": 1.0})
    client.upload_model("refused", "iter_0000", 0, "/nonexistent/iter_0000.pt")
    client.post_metrics("refused", 1, {"loss_total": 2.0})
    assert client.flush(60) and client.close() == 0
    assert "refused the metrics of refused iteration 0" in caplog.text and "unknown metric name" in caplog.text
    assert "cannot upload model refused iter_0000" in caplog.text
    with shared_server.client() as http:
        entries = http.get("/training/metrics", params={"run": "refused"}).json()["metrics"]
    assert [e["iteration"] for e in entries] == [1]


def test_without_a_url_the_run_folder_gets_a_store_and_a_dashboard(tmp_path, capsys, caplog):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    publisher = TrainingPublisher(run="local", run_dir=tmp_path / "run", port=taken.getsockname()[1])
    publisher.start()
    address = re.search(r"dashboard: (http://\S+)", capsys.readouterr().out).group(1)
    assert not address.endswith(f":{taken.getsockname()[1]}/dashboard")  # moved to a free port
    metrics, reliability = pretend_iteration(batch=16)
    model_path = save_model_file(RazzleNet.of_size("tiny"), tmp_path / "iter_0000.pt")
    publisher.publish_iteration(None, 0, {**metrics, "bogus_name": 1.0}, model_path, reliability)
    publisher.publish_iteration("local", 1, {"loss_total": 1.5, "bogus_name": 2.0, "value_mean": float("nan")})
    base = address.removesuffix("/dashboard")
    page = httpx.get(address)
    assert page.status_code == 200 and "Training dashboard" in page.text
    served = httpx.get(f"{base}/training/metrics").json()
    assert [e["iteration"] for e in served["metrics"]] == [0, 1] and "value_mean" not in served["metrics"][1]
    assert httpx.get(f"{base}/training/models/latest").json()["model"]["version"] == "iter_0000"
    publisher.close()
    taken.close()
    assert caplog.text.count("bogus_name") == 1  # warned once, not every iteration

    store = MetricsStore(tmp_path / "run" / "metrics.db")  # what `razzle serve --db` reads
    entries, total = store.list_metrics()
    assert total == 2 and entries[1]["loss_total"] == 1.5 and len(entries[0]["reliability"]) == 10
    store.close()


def report(iteration: int, model_path, metrics: dict[str, float], reliability: dict) -> IterationReport:
    heldout = {name: value for name, value in metrics.items() if name not in ("lr", "games", "positions")}
    return IterationReport(
        iteration=iteration,
        heldout=heldout,
        games={"games": 48.0, "positions": 384.0, "game_length_mean": 31.5},
        training={"loss_total": 2.0 - iteration / 10, "policy_loss": 1.5},
        evaluation={"eval_random_win_rate": 0.5 + iteration / 10},
        reliability=reliability,
        model_path=str(model_path),
        epoch=2 * (iteration + 1),
        global_step=10 * (iteration + 1),
        lr=0.02,
        selfplay_seconds=30.0,
        training_seconds=20.0 + iteration,
        evaluation_seconds=5.0,
    )


def test_the_publisher_is_a_handler_of_the_training_loop(start_server, tmp_path, capsys):
    server = start_server()
    metrics, reliability = pretend_iteration()
    publisher = TrainingPublisher(url=server.url, run_dir=tmp_path / "2026-01-01_12-00-00")
    assert isinstance(publisher, IterationHandler)
    publisher.on_run_start([])
    for iteration in range(3):
        path = save_model_file(RazzleNet.of_size("tiny"), tmp_path / f"iter_{iteration:04d}.pt")
        publisher.on_iteration(report(iteration, path, metrics, reliability))
    publisher.on_run_end()
    assert f"dashboard: {server.url}/dashboard" in capsys.readouterr().out
    with server.client() as client:
        entries = client.get("/training/metrics").json()["metrics"]
        models = client.get("/training/models").json()["models"]
    assert [(e["run"], e["iteration"]) for e in entries] == [("2026-01-01_12-00-00", i) for i in range(3)]
    for iteration, entry in enumerate(entries):
        assert entry["x_train_loss_total"] == pytest.approx(2.0 - iteration / 10) and entry["lr"] == 0.02
        assert entry["eval_random_win_rate"] == pytest.approx(0.5 + iteration / 10)
        assert entry["iteration_seconds"] == pytest.approx(55.0 + iteration)
        assert (entry["selfplay_seconds"], entry["evaluation_seconds"]) == (30.0, 5.0)
        assert entry["policy_top1_accuracy"] == pytest.approx(metrics["policy_top1_accuracy"])
        assert len(entry["reliability"]) == 10
    assert [m["version"] for m in models] == ["iter_0000", "iter_0001", "iter_0002"]


def test_the_server_side_imports_no_lightning():
    code = (
        "import sys, razzle.server.publisher, razzle.server.app, razzle.server.names, razzle.metric_names; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('lightning', 'pytorch_lightning')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
