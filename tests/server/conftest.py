"""Servers for the server tests: real `python -m razzle.server` processes on loopback ports
with temporary SQLite files, and an in-process uvicorn server whose AI is a test double."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from razzle.game.position import Position
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from razzle.server.app import create_app
from razzle.server.store import MetricsStore

START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`python -m razzle.server` on a free loopback port; its output goes to a log file."""

    def __init__(self, db: Path, token: str | None = None, *extra: str, port: int | None = None):
        self.db = db
        self.token = token
        self.extra = extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_name(f"server-{self.port}.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "razzle.server", "--db", str(self.db), "--port", str(self.port)]
        command += ["--log-level", "warning", *self.extra]
        env = {k: v for k, v in os.environ.items() if k != "RAZZLE_SERVER_TOKEN"}
        if self.token:
            command += ["--token", self.token]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.process.kill()
        raise RuntimeError(f"server did not start within {START_TIMEOUT_S} s: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture
def start_server(tmp_path):
    """Start servers on demand (`start_server(db, token=...)`); all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(db: Path | None = None, token: str | None = None, *extra: str, port: int | None = None) -> ServerProcess:
        server = ServerProcess(db or tmp_path / "metrics.db", token, *extra, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the tests that only need some server; each uses its own run names."""
    server = ServerProcess(tmp_path_factory.mktemp("shared") / "metrics.db").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """A real exported model file (the tiny network), as the trainer writes them."""
    path = tmp_path_factory.mktemp("models") / "iter_0003.pt"
    save_model_file(RazzleNet.of_size("tiny"), path, {"iteration": 3, "run": "test"})
    return path


class ShuttleAI:
    """Test double for the AI: shuttles its f8 piece between f8 and g6 (far from Player 1's
    side of the board) and ends any chain at once, so tests know every AI reply."""

    def __init__(self):
        self.calls: list[int] = []

    def __call__(self, position: Position, simulations: int) -> list[str]:
        self.calls.append(simulations)
        legal = position.legal_moves()
        for action in ("end", "f8-g6", "g6-f8", "f1-g3", "g3-f1"):
            if action in legal:
                return [action]
        after = position.play(legal[0])
        return [legal[0], "end"] if after.mid_chain else [legal[0]]


@contextmanager
def serve_in_thread(app):
    """A real uvicorn server on a loopback port, in this process (so the app can hold a
    test double); yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@pytest.fixture(scope="module")
def play_server(tmp_path_factory):
    """(url, ai double, store) of an in-process server whose AI is `ShuttleAI`."""
    store = MetricsStore(tmp_path_factory.mktemp("play") / "metrics.db")
    ai = ShuttleAI()
    app = create_app(store, ai_factory=lambda _model_path: ai)
    with serve_in_thread(app) as url:
        yield url, ai, store
