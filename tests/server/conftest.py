"""Servers for the server tests: real `python -m razzle.server` processes on loopback ports
over a real database (a temporary SQLite file, or a fresh database on the PostgreSQL server
of RAZZLE_TEST_POSTGRES_URL), and an in-process uvicorn server whose AI is a test double.

Test modules that run on both databases say so with `BOTH_DATABASES` (see `backend`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy
import uvicorn

from razzle.game.position import Position
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from razzle.server.app import create_app
from razzle.server.store import MetricsStore, database_url

START_TIMEOUT_S = 90
POSTGRES_URL_ENV = "RAZZLE_TEST_POSTGRES_URL"
BOTH_DATABASES = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True, scope="module"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TestDatabase:
    """A database for one test (or module): what `--db` gets, and where model files go."""

    url: str  # a SQLAlchemy URL
    folder: Path

    @property
    def models_dir(self) -> Path:
        return self.folder / "metrics-models"

    @property
    def name(self) -> str:
        return sqlalchemy.make_url(self.url).database.rsplit("/", 1)[-1]

    def store(self) -> MetricsStore:
        return MetricsStore(self.url, self.models_dir)

    def integrity_problems(self) -> list[str]:
        """SQLite's own checks, and on both databases: no orphan rows, no duplicates."""
        engine = sqlalchemy.create_engine(self.url)
        problems = []
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                checked = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
                problems += [] if checked == "ok" else [checked]
                problems += [repr(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")]
            for query in (
                "SELECT COUNT(*) FROM metric_values WHERE iteration_id NOT IN (SELECT id FROM iterations)",
                "SELECT COUNT(*) FROM reliability_bins WHERE iteration_id NOT IN (SELECT id FROM iterations)",
                "SELECT COUNT(*) - COUNT(DISTINCT run || '/' || CAST(iteration AS VARCHAR)) FROM iterations",
                "SELECT COUNT(*) - COUNT(DISTINCT run || '/' || version) FROM models",
            ):
                if connection.exec_driver_sql(query).scalar():
                    problems.append(query)
        engine.dispose()
        return problems


class DatabaseMaker:
    """Fresh databases: a SQLite file in a temporary folder, or a new PostgreSQL database
    (dropped at the end of the session)."""

    def __init__(self):
        self.created: list[str] = []
        self.admin: sqlalchemy.Engine | None = None

    def new(self, backend: str, folder: Path) -> TestDatabase:
        if backend == "sqlite":
            return TestDatabase(database_url(folder / "metrics.db"), folder)
        base = sqlalchemy.make_url(os.environ[POSTGRES_URL_ENV])
        if self.admin is None:
            self.admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
        name = f"razzle_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        self.created.append(name)
        return TestDatabase(base.set(database=name).render_as_string(hide_password=False), folder)

    def drop_all(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as connection:
            for name in self.created:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.dispose()


@pytest.fixture(scope="session")
def database_maker():
    maker = DatabaseMaker()
    yield maker
    maker.drop_all()


@pytest.fixture(scope="module")
def backend(request) -> str:
    """"sqlite" unless a module parametrises it (BOTH_DATABASES); "postgres" needs a server."""
    chosen = getattr(request, "param", "sqlite")
    if chosen == "postgres" and not os.environ.get(POSTGRES_URL_ENV):
        pytest.skip(f"{POSTGRES_URL_ENV} is not set (start one with: export {POSTGRES_URL_ENV}=$(.ci/postgres.sh))")
    return chosen


@pytest.fixture
def database(backend, database_maker, tmp_path) -> TestDatabase:
    return database_maker.new(backend, tmp_path)


class ServerProcess:
    """`python -m razzle.server` on a free loopback port; its output goes to a log file."""

    def __init__(self, database: TestDatabase | Path, token: str | None = None, *extra: str, port: int | None = None):
        if isinstance(database, Path):
            database = TestDatabase(database_url(database), database.parent)
        self.database = database
        self.token = token
        self.extra = extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = database.folder / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "razzle.server", "--db", self.database.url, "--port", str(self.port)]
        command += ["--models-dir", str(self.database.models_dir), "--log-level", "warning", *self.extra]
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
def start_server(database):
    """Start servers on demand (`start_server(token=...)`), by default all over this test's
    `database` (a restart test starts a second one on it), or over the SQLite file `db`;
    all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(token: str | None = None, *extra: str, port: int | None = None, db: Path | None = None) -> ServerProcess:
        server = ServerProcess(db or database, token, *extra, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(backend, database_maker, tmp_path_factory):
    """One server for the tests that only need some server; each uses its own run names."""
    server = ServerProcess(database_maker.new(backend, tmp_path_factory.mktemp("shared"))).start()
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
