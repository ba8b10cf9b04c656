"""Load and faults against real server processes, on SQLite and PostgreSQL: concurrent
writers (counts, requests/s) and SIGKILL in the middle of a large model upload while metrics
stream in. Figures are printed (run with `-s`); the README's Reliability section quotes them.
Nothing here asserts a time."""

from __future__ import annotations

import functools
import hashlib
import signal
import socket
import threading
import time

import httpx
import pytest

from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from tests.server.conftest import BOTH_DATABASES

pytestmark = [BOTH_DATABASES, pytest.mark.slow]
WRITERS = 20
POSTS_PER_WRITER = 25


def metrics_of(writer: int, iteration: int) -> dict[str, float]:
    return {"loss_total": writer + iteration / 1000, "games": 8, "positions": 100 + iteration}


@pytest.fixture(scope="session")
def large_model_file(tmp_path_factory):
    """The "large" network's model file (about 70 MB), as a long training run exports it."""
    path = tmp_path_factory.mktemp("large") / "iter_0100.pt"
    save_model_file(RazzleNet.of_size("large"), path, {"iteration": 100, "run": "load"})
    return path


def test_concurrent_writers_lose_and_duplicate_nothing(start_server, database, model_file, backend):
    server = start_server()
    failures: list[str] = []
    model = model_file.read_bytes()

    def writer(index: int) -> None:
        with server.client() as client:
            for iteration in range(POSTS_PER_WRITER):
                body = {"run": f"w{index:02d}", "iteration": iteration, "metrics": metrics_of(index, iteration)}
                response = client.post("/training/metrics", json=body)
                if response.status_code != 200:
                    failures.append(response.text)
            form = {"run": f"w{index:02d}", "version": "iter_0001", "iteration": "1"}
            response = client.post("/training/models", data=form, files={"file": ("m.pt", model)})
            if response.status_code != 200:
                failures.append(response.text)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    seconds = time.perf_counter() - started
    assert failures == []

    with server.client() as client:
        entries = client.get("/training/metrics", params={"limit": 10_000}).json()["metrics"]
        models = client.get("/training/models").json()["models"]
    stored = {(e["run"], e["iteration"]): e["loss_total"] for e in entries}
    expected = {
        (f"w{w:02d}", i): metrics_of(w, i)["loss_total"] for w in range(WRITERS) for i in range(POSTS_PER_WRITER)
    }
    lost = len(set(expected) - set(stored))
    duplicated = len(entries) - len(stored)
    assert (lost, duplicated, stored) == (0, 0, expected)
    assert sorted(m["run"] for m in models) == [f"w{w:02d}" for w in range(WRITERS)]
    requests = WRITERS * (POSTS_PER_WRITER + 1)
    print(
        f"\nLOAD {backend}: {WRITERS} writers, {WRITERS * POSTS_PER_WRITER} metrics posts + {WRITERS} model uploads "
        f"({len(model) >> 10} KiB) in {seconds:.1f} s = {requests / seconds:.0f} requests/s; "
        f"lost {lost}, duplicated {duplicated}"
    )
    assert database.integrity_problems() == []


def _stream_metrics(server, stop: threading.Event, acknowledged: dict) -> None:
    """Post one iteration after another until the server dies; remember what it acknowledged."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        iteration = 0
        while not stop.is_set():
            values = {"loss_total": 1 + iteration / 100, "lr": 0.01}
            try:
                body = {"run": "stream", "iteration": iteration, "metrics": values}
                response = client.post("/training/metrics", json=body)
            except httpx.TransportError:
                return
            if response.status_code == 200:
                acknowledged[iteration] = values
            iteration += 1


def _upload_raw(server, model_bytes: bytes, send_share: float, on_sent) -> None:
    """Send a multipart upload over a plain socket, `send_share` of its body, then call on_sent."""
    head, tail = (
        b'--b\r\nContent-Disposition: form-data; name="run"\r\n\r\nstream\r\n'
        b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\niter_0100\r\n'
        b'--b\r\nContent-Disposition: form-data; name="iteration"\r\n\r\n100\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.pt"\r\n\r\n',
        b"\r\n--b--\r\n",
    )
    body = head + model_bytes + tail
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            b"POST /training/models HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        end = int(len(body) * send_share)
        for start in range(0, end, 1 << 20):
            connection.sendall(body[start : min(start + (1 << 20), end)])
        on_sent()


def _when_copying_starts(database, then) -> None:
    """Wait until the server copies the received file into the models folder, then `then()`."""
    deadline = time.monotonic() + 120
    while not list(database.models_dir.glob(".incoming-*")):
        assert time.monotonic() < deadline, "the server never started storing the upload"
        time.sleep(0.002)
    then()


@pytest.mark.parametrize("send_share", [0.5, 1.0], ids=["mid-body", "while-storing"])
def test_sigkill_during_a_large_upload_keeps_every_acknowledged_write(
    start_server, database, model_file, large_model_file, backend, send_share
):
    server = start_server()
    with server.client() as client:
        form = {"run": "stream", "version": "iter_0001", "iteration": "1"}
        kept = client.post("/training/models", data=form, files={"file": ("m.pt", model_file.read_bytes())})
        assert kept.status_code == 200
    stop, acknowledged = threading.Event(), {}
    streamer = threading.Thread(target=_stream_metrics, args=(server, stop, acknowledged))
    streamer.start()
    while len(acknowledged) < 5:
        time.sleep(0.05)
    kill = functools.partial(server.stop, signal.SIGKILL)
    if send_share == 1.0:  # the whole body arrived: kill once the server is writing its file
        _upload_raw(server, large_model_file.read_bytes(), send_share, lambda: _when_copying_starts(database, kill))
    else:
        _upload_raw(server, large_model_file.read_bytes(), send_share, kill)
    stop.set()
    streamer.join(60)
    leftovers = sorted(p.name for p in database.models_dir.glob(".incoming-*"))
    assert database.integrity_problems() == []

    again = start_server()
    with again.client() as client:
        entries = client.get("/training/metrics", params={"run": "stream", "limit": 10_000}).json()["metrics"]
        models = client.get("/training/models").json()["models"]
        downloads = {m["version"]: client.get(m["download_url"]).content for m in models}
    stored = {e["iteration"]: {"loss_total": e["loss_total"], "lr": e["lr"]} for e in entries}
    missing = [i for i in acknowledged if stored.get(i) != acknowledged[i]]
    assert missing == [] and len(stored) == len(entries)
    assert [m["version"] for m in models] == ["iter_0001"]  # the killed upload was never acknowledged
    assert downloads["iter_0001"] == model_file.read_bytes()
    assert list(database.models_dir.glob(".incoming-*")) == []
    kept_file = f"{hashlib.sha256(model_file.read_bytes()).hexdigest()}.pt"
    assert sorted(p.name for p in database.models_dir.iterdir()) == [kept_file]
    print(
        f"\nKILL {backend} {int(send_share * 100)}% of a {large_model_file.stat().st_size >> 20} MB upload: "
        f"{len(acknowledged)} acknowledged metrics posts, lost {len(missing)}, "
        f"{len(entries) - len(acknowledged)} unacknowledged but stored; temporary files left by the dead "
        f"process: {len(leftovers)}, after restart: 0"
    )
