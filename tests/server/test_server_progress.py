"""Progress of a run between its iterations: the endpoint on real server processes, the
background client, the publisher (embedded dashboard and remote server) and the freshness
rule of the dashboard's status."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from razzle.server.app import create_app
from razzle.server.client import TrainingClient
from razzle.server.progress import ProgressBoard
from razzle.server.publisher import TrainingPublisher
from razzle.server.store import MetricsStore
from razzle.selfplay.status import ActorStatus
from razzle.train.report import Progress
from tests.server.conftest import free_port, serve_in_thread


def report(run: str, iteration: int = 0, phase: str = "selfplay", done: int = 23, total: int = 64) -> dict:
    return {"run": run, "iteration": iteration, "phase": phase, "done": done, "total": total}


ACTOR = {"actor": 0, "node": "10.0.0.7", "state": "playing", "games": 12, "games_per_s": 0.5, "restarts": 1}


def progress_of(client, run: str) -> dict | None:
    summary = client.get("/training/dashboard").json()
    return next((p for p in summary["progress"] if p["run"] == run), None)


def wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return value


def test_progress_makes_a_run_active_before_its_first_iteration_ends_and_is_not_stored(start_server, tmp_path):
    db = tmp_path / "progress.db"
    server = start_server(db=db)
    with server.client() as client:
        assert client.get("/training/dashboard").json()["status"] == "idle"
        for done in (3, 23):  # the newest report wins
            response = client.post("/training/progress", json=report("first-iter", done=done))
            assert response.status_code == 200, response.text
        stored = response.json()
        assert (stored["iteration"], stored["phase"], stored["done"], stored["total"]) == (0, "selfplay", 23, 64)
        summary = client.get("/training/dashboard").json()
    assert summary["status"] == "active"
    assert summary["runs"] == [] and summary["iterations"] == 0  # nothing went into the store
    [progress] = summary["progress"]
    assert (progress["run"], progress["iteration"], progress["done"], progress["total"]) == ("first-iter", 0, 23, 64)
    assert progress["fresh"] is True and progress["age_s"] >= 0 and progress["reported_at"].endswith("Z")
    server.stop()  # progress lives in the server's memory only
    with start_server(db=db).client() as client:
        summary = client.get("/training/dashboard").json()
    assert summary["progress"] == [] and summary["status"] == "idle"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (report("bad", done=65), "more than total"),
        (report("bad", phase="sleeping"), "phase"),
        (report("bad", iteration=-1), "iteration"),
        ({**report("bad"), "done": "23"}, "done"),
        ({**report("bad"), "games": 3}, "games"),
        (report("no spaces allowed"), "run"),
        ({**report("bad"), "actors": [{**ACTOR, "games_per_s": -1.0}]}, "games_per_s"),
        ({**report("bad"), "actors": [{**ACTOR, "state": "asleep"}]}, "state"),
    ],
    ids=[
        "done-over-total",
        "unknown-phase",
        "negative-iteration",
        "string-number",
        "unknown-key",
        "bad-run-name",
        "negative-games-per-s",
        "unknown-actor-state",
    ],
)
def test_bad_progress_reports_are_refused_by_name(shared_server, body, problem):
    with shared_server.client() as client:
        response = client.post("/training/progress", json=body)
        assert response.status_code == 422
        assert problem in response.text
        assert progress_of(client, body["run"]) is None


def test_progress_needs_the_token_like_every_write(start_server):
    server = start_server(token="s3cret")
    with server.client() as anonymous, server.client("wrong") as wrong, server.client("s3cret") as right:
        assert anonymous.post("/training/progress", json=report("guarded")).status_code == 401
        assert wrong.post("/training/progress", json=report("guarded")).status_code == 403
        assert progress_of(anonymous, "guarded") is None
        assert right.post("/training/progress", json=report("guarded")).status_code == 200
        assert progress_of(anonymous, "guarded")["done"] == 23


def test_a_stale_report_leaves_the_status_idle(tmp_path):
    now = [1_000_000.0]
    board = ProgressBoard(clock=lambda: now[0])
    with serve_in_thread(create_app(MetricsStore(tmp_path / "stale.db"), progress=board)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post("/training/progress", json=report("stale", phase="training", done=1, total=10))
            window = client.get("/training/dashboard").json()["active_window_s"]
            now[0] += window + 1
            summary = client.get("/training/dashboard").json()
    assert summary["status"] == "idle"
    assert summary["progress"][0]["fresh"] is False and summary["progress"][0]["phase"] == "training"


def test_the_client_sends_progress_and_never_blocks_on_a_dead_server(start_server):
    server = start_server()
    client = TrainingClient(server.url)
    try:
        client.post_progress("via-client", 2, "evaluation", 5, 20)
        with server.client() as reader:
            seen = wait_for(lambda: progress_of(reader, "via-client"))
        assert (seen["iteration"], seen["phase"], seen["done"], seen["total"]) == (2, "evaluation", 5, 20)
    finally:
        client.close()
    dead = TrainingClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        for done in range(200):
            dead.post_progress("nobody-listens", 0, "selfplay", done, 200)
        assert dead.pending == 0  # progress is never buffered like metrics
    finally:
        assert dead.close(timeout=5) == 0


def test_the_publisher_reports_progress_to_a_remote_server(start_server, tmp_path):
    server = start_server()
    publisher = TrainingPublisher(run="remote-progress", url=server.url, run_dir=tmp_path)
    publisher.start()
    try:
        publisher.publish_progress(0, "selfplay", 7, 64)
        with server.client() as reader:
            seen = wait_for(lambda: progress_of(reader, "remote-progress"))
        assert (seen["phase"], seen["done"]) == ("selfplay", 7)
    finally:
        publisher.close()


def test_the_embedded_dashboard_shows_progress_and_says_when_its_port_was_taken(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        publisher = TrainingPublisher(run="embedded-progress", run_dir=tmp_path, port=port)
        publisher.start()
        try:
            out = capsys.readouterr().out
            assert f"port {port} on 127.0.0.1 is taken" in out
            assert publisher.dashboard_url in out and f":{port}/" not in publisher.dashboard_url
            publisher.publish_progress(1, "training", 3, 10)
            base = publisher.dashboard_url.removesuffix("/dashboard")
            with httpx.Client(base_url=base, timeout=30) as reader:
                summary = reader.get("/training/dashboard").json()
                library = reader.get("/training/games").json()  # the run's own replay folder
        finally:
            publisher.close()
    assert summary["status"] == "active"
    assert [(p["run"], p["iteration"], p["phase"], p["done"]) for p in summary["progress"]] == [
        ("embedded-progress", 1, "training", 3)
    ]
    assert library == {"runs": [{"run": "embedded-progress", "iterations": []}]}


def test_the_self_play_actors_reach_the_dashboard_with_the_progress(start_server, tmp_path):
    server = start_server()
    publisher = TrainingPublisher(run="ray-actors", url=server.url, run_dir=tmp_path)
    publisher.start()
    actors = (ActorStatus(0, "10.0.0.7", "playing", 12, 0.5, 1), ActorStatus(1, "10.0.0.8", "idle", 14, 0.75, 0))
    try:
        publisher.on_progress(Progress(3, "selfplay", 26, 32, actors))
        with server.client() as reader:
            seen = wait_for(lambda: progress_of(reader, "ray-actors"))
    finally:
        publisher.close()
    assert seen["actors"] == [actor.as_dict() for actor in actors]
