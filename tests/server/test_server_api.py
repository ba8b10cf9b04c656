"""The training API against real server processes on loopback ports, on SQLite and on
PostgreSQL (when RAZZLE_TEST_POSTGRES_URL names a server)."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import socket
import threading
import time

import pytest
import torch

from tests.server.conftest import BOTH_DATABASES

pytestmark = BOTH_DATABASES

RELIABILITY = [{"mean_value": -0.9 + 0.2 * i, "mean_outcome": -0.8 + 0.17 * i, "count": 10 + i} for i in range(10)]


def iteration_metrics(iteration: int, offset: float = 0.0) -> dict[str, float]:
    return {
        "loss_total": 3.0 - 0.1 * iteration + offset,
        "policy_top1_accuracy": 0.2 + 0.05 * iteration,
        "value_calibration_error": 0.3 - 0.01 * iteration,
        "games": 10,
        "positions": 300 + iteration,
    }


def post(client, run, iteration, metrics, **extra):
    return client.post("/training/metrics", json={"run": run, "iteration": iteration, "metrics": metrics, **extra})


def upload(client, path, run, version, iteration=3, content=None):
    data = content if content is not None else path.read_bytes()
    form = {"run": run, "version": version, "iteration": str(iteration)}
    return client.post("/training/models", data=form, files={"file": ("model.pt", data)})


def detail(response) -> str:
    return json.dumps(response.json()["detail"])


# --- every endpoint ------------------------------------------------------------------------


def test_metrics_are_stored_listed_paged_and_merged(shared_server):
    with shared_server.client() as client:
        for iteration in range(5):
            extra = {"reliability": RELIABILITY} if iteration == 4 else {}
            response = post(client, "roundtrip", iteration, iteration_metrics(iteration), **extra)
            assert response.status_code == 200, response.text
            assert response.json()["created"] is True
        page = client.get("/training/metrics", params={"run": "roundtrip", "limit": 2, "offset": 1}).json()
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
        assert [e["iteration"] for e in page["metrics"]] == [1, 2]
        entry = page["metrics"][0]
        assert entry["run"] == "roundtrip" and entry["timestamp"].endswith("Z")
        assert entry["loss_total"] == pytest.approx(2.9) and entry["games"] == 10

        window = client.get("/training/metrics", params={"run": "roundtrip", "min_iteration": 2, "max_iteration": 3})
        assert [e["iteration"] for e in window.json()["metrics"]] == [2, 3]
        newest = client.get("/training/metrics", params={"run": "roundtrip", "order": "desc", "limit": 1}).json()
        assert newest["metrics"][0]["iteration"] == 4 and newest["metrics"][0]["reliability"] == RELIABILITY

        # The training plan's `jq "{iteration, loss_total, ...}"` reads the top level.
        latest = client.get("/training/metrics/latest", params={"run": "roundtrip"}).json()
        wanted = ("loss_total", "policy_top1_accuracy", "value_calibration_error")
        assert latest["iteration"] == 4
        assert {k: latest[k] for k in wanted} == pytest.approx({k: iteration_metrics(4)[k] for k in wanted})
        assert latest["metrics"] == {k: v for k, v in latest.items() if k != "metrics"}

        again = post(client, "roundtrip", 2, {"lr": 0.01, "loss_total": 9.0})
        assert again.json() == {"run": "roundtrip", "iteration": 2, "created": False, "names": ["loss_total", "lr"]}
        merged = client.get("/training/metrics", params={"run": "roundtrip", "min_iteration": 2, "max_iteration": 2})
        entry = merged.json()["metrics"][0]
        assert (entry["lr"], entry["loss_total"], entry["policy_top1_accuracy"]) == (0.01, 9.0, 0.30000000000000004)
        assert client.get("/training/metrics", params={"run": "roundtrip"}).json()["total"] == 5


def test_custom_and_evaluation_families_are_accepted(shared_server):
    with shared_server.client() as client:
        response = post(client, "families", 0, {"eval_random_win_rate": 0.9, "x_grad_norm": 1.5})
        assert response.status_code == 200, response.text
        names = client.get("/training/metric-names").json()
        assert "policy_ebf" in names["known"] and names["open_families"] == ["eval_*", "x_*"]


def test_models_upload_list_latest_download(shared_server, model_file):
    with shared_server.client() as client:
        first = upload(client, model_file, "models-run", "iter_0003")
        assert first.status_code == 200, first.text
        model = first.json()["model"]
        assert first.json()["created"] is True
        assert model["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
        assert model["size"] == model_file.stat().st_size
        assert upload(client, model_file, "models-run", "iter_0004", iteration=4).status_code == 200
        repeat = upload(client, model_file, "models-run", "iter_0004", iteration=4)
        assert repeat.json()["created"] is False

        listed = client.get("/training/models", params={"run": "models-run"}).json()
        assert listed["total"] == 2 and [m["version"] for m in listed["models"]] == ["iter_0003", "iter_0004"]
        latest = client.get("/training/models/latest", params={"run": "models-run"}).json()["model"]
        assert latest["version"] == "iter_0004" and latest["iteration"] == 4

        download = client.get(latest["download_url"])
        assert download.status_code == 200 and download.content == model_file.read_bytes()
        assert "models-run_iter_0004.pt" in download.headers["content-disposition"]
        missing = client.get("/training/models/iter_9999/download")
        assert missing.status_code == 404 and "iter_9999" in detail(missing)
        assert client.get("/training/models/latest", params={"run": "no-such-run"}).json() == {"model": None}


def test_dashboard_summarises_runs_models_and_workers(shared_server, model_file):
    with shared_server.client() as client:
        for iteration in range(3):
            post(client, "dash-a", iteration, iteration_metrics(iteration), worker="box-1")
        upload(client, model_file, "dash-a", "iter_0002", iteration=2)
        summary = client.get("/training/dashboard").json()
    run = next(r for r in summary["runs"] if r["run"] == "dash-a")
    assert (run["iterations"], run["first_iteration"], run["last_iteration"]) == (3, 0, 2)
    assert (run["games"], run["positions"], run["models"]) == (30, 903, 1)
    assert summary["status"] == "active"
    assert summary["games"] >= 30 and summary["iterations"] >= 3
    assert summary["latest_model"]["version"] == "iter_0002"
    assert summary["latest_metrics"]["run"] == "dash-a"
    assert any(w["name"] == "box-1" and w["posts"] == 3 for w in summary["workers"])


def test_clear_deletes_one_run_then_everything(start_server, model_file):
    server = start_server()
    with server.client() as client:
        for run in ("keep", "drop"):
            post(client, run, 0, iteration_metrics(0), reliability=RELIABILITY)
            upload(client, model_file, run, "iter_0000", iteration=0)
        one = client.delete("/training/clear", params={"run": "drop"}).json()
        assert one == {
            "runs": ["drop"],
            "iterations": 1,
            "metric_values": 5,
            "reliability_bins": 10,
            "models": 1,
            "model_files": 0,  # the same file is still used by "keep"
            "workers": 0,
        }
        assert [e["run"] for e in client.get("/training/metrics").json()["metrics"]] == ["keep"]
        everything = client.delete("/training/clear").json()
        assert (everything["runs"], everything["iterations"], everything["models"], everything["model_files"]) == (
            ["keep"],
            1,
            1,
            1,
        )
        assert client.get("/training/metrics").json()["total"] == 0
    assert not list(server.database.models_dir.glob("*.pt"))


# --- bad input ------------------------------------------------------------------------------

BAD_METRICS = {
    "iteration as a string": ({"run": "bad", "iteration": "3", "metrics": {"loss_total": 1.0}}, "iteration"),
    "value as a string": ({"run": "bad", "iteration": 0, "metrics": {"loss_total": "1.5"}}, "loss_total"),
    "value as a boolean": ({"run": "bad", "iteration": 0, "metrics": {"loss_total": True}}, "loss_total"),
    "metrics as a list": ({"run": "bad", "iteration": 0, "metrics": [1, 2]}, "metrics"),
    "run as a number": ({"run": 5, "iteration": 0, "metrics": {"loss_total": 1.0}}, "run"),
    "negative iteration": ({"run": "bad", "iteration": -1, "metrics": {"loss_total": 1.0}}, "greater than or equal"),
    "unknown name": ({"run": "bad", "iteration": 0, "metrics": {"loss_totl": 1.0}}, "unknown metric name 'loss_totl'"),
    "malformed name": ({"run": "bad", "iteration": 0, "metrics": {"Loss-Total": 1.0}}, "malformed metric name"),
    "overlong name": ({"run": "bad", "iteration": 0, "metrics": {"x_" + "a" * 70: 1.0}}, "at most 64 characters"),
    "path in run name": ({"run": "../bad", "iteration": 0, "metrics": {"loss_total": 1.0}}, "run"),
    "unknown field": ({"run": "bad", "iteration": 0, "metrics": {}, "metric": {"lr": 1}}, "metric"),
    "nine reliability bins": ({"run": "bad", "iteration": 0, "reliability": RELIABILITY[:9]}, "reliability"),
    "mean out of range": (
        {"run": "bad", "iteration": 0, "reliability": [{**RELIABILITY[0], "mean_value": 1.5}] + RELIABILITY[1:]},
        "mean_value",
    ),
    "nothing to store": ({"run": "bad", "iteration": 0, "metrics": {}}, "nothing to store"),
}


@pytest.mark.parametrize("body, problem", BAD_METRICS.values(), ids=BAD_METRICS.keys())
def test_bad_metrics_are_refused_and_nothing_is_stored(shared_server, body, problem):
    with shared_server.client() as client:
        response = client.post("/training/metrics", json=body)
        assert response.status_code == 422
        assert problem in detail(response)
        assert client.get("/training/metrics", params={"run": "bad"}).json()["total"] == 0


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(shared_server, raw):
    text = f'{{"run": "nonfinite", "iteration": 0, "metrics": {{"loss_total": {raw}, "lr": 0.1}}}}'
    with shared_server.client() as client:
        response = client.post("/training/metrics", content=text, headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and "finite" in detail(response)
        assert client.get("/training/metrics", params={"run": "nonfinite"}).json()["total"] == 0


def test_malformed_json_is_refused(shared_server):
    with shared_server.client() as client:
        response = client.post("/training/metrics", content="{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and "json" in detail(response).lower()


def _raw_request(url: str, head: str, body: bytes = b"") -> str:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode() + body)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _content_length(reply):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply.decode(errors="replace")


def _content_length(reply: bytes) -> int:
    for line in reply.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_oversized_bodies_are_refused_before_reading_them(shared_server):
    big = {"run": "big", "iteration": 0, "metrics": {"loss_total": 1.0}, "worker": "w" * (2 << 20)}
    with shared_server.client() as client:
        response = client.post("/training/metrics", json=big)
        assert response.status_code == 413 and "over the limit of 1048576 bytes" in detail(response)
        assert client.get("/training/metrics", params={"run": "big"}).json()["total"] == 0
    # A declared 600 MB upload is refused at once, without the server waiting for the body.
    head = (
        "POST /training/models HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: 600000000\r\n\r\n"
    )
    assert _raw_request(shared_server.url, head).startswith("HTTP/1.1 413")
    chunked = "POST /training/metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = _raw_request(shared_server.url, chunked, b"5\r\nhello\r\n0\r\n\r\n")
    assert reply.startswith("HTTP/1.1 411") and "Content-Length" in reply


ESCAPING_VERSIONS = ["../evil", "..", ".hidden", "a/b", "..\\evil", "/etc/passwd", "iter 1", ""]


@pytest.mark.parametrize("version", ESCAPING_VERSIONS)
def test_model_versions_that_could_escape_are_refused(shared_server, model_file, tmp_path, version):
    before = sorted(p.name for p in tmp_path.parent.rglob("*"))
    with shared_server.client() as client:
        response = upload(client, model_file, "escape", version)
        assert response.status_code == 422
        assert client.get("/training/models", params={"run": "escape"}).json()["total"] == 0
    assert sorted(p.name for p in tmp_path.parent.rglob("*")) == before


@pytest.mark.parametrize("path", ["/training/models/..%2F..%2Fetc%2Fpasswd/download", "/training/models/../download"])
def test_download_paths_cannot_escape(shared_server, path):
    with shared_server.client() as client:
        response = client.get(path)
    assert response.status_code in (404, 422) and b"root:" not in response.content


def _not_models(model_file) -> dict[str, bytes]:
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    return {
        "text": b"hello, I am not a model",
        "foreign torch file": buffer.getvalue(),
        "truncated model": model_file.read_bytes()[:5000],
        "empty": b"",
    }


def test_uploads_that_are_not_model_files_are_refused(shared_server, model_file):
    models_dir = shared_server.database.models_dir
    with shared_server.client() as client:
        for name, content in _not_models(model_file).items():
            response = upload(client, model_file, "notmodels", "iter_0001", content=content)
            assert response.status_code == 422, name
            assert "not a razzle model file" in detail(response), name
        assert client.get("/training/models", params={"run": "notmodels"}).json()["total"] == 0
        for bad_iteration in ("-1", "three"):
            form = {"run": "notmodels", "version": "iter_0001", "iteration": bad_iteration}
            response = client.post("/training/models", data=form, files={"file": ("m.pt", model_file.read_bytes())})
            assert response.status_code == 422 and "iteration" in detail(response)
    assert not list(models_dir.glob(".incoming-*"))


# --- token, persistence, stopping --------------------------------------------------------------


def test_a_token_guards_every_write_and_reads_stay_open(start_server, model_file):
    server = start_server(token="s3cret")
    writes = [
        lambda c: post(c, "guarded", 0, {"loss_total": 1.0}),
        lambda c: upload(c, model_file, "guarded", "iter_0000"),
        lambda c: c.delete("/training/clear"),
    ]
    with server.client() as anonymous, server.client("wrong") as wrong, server.client("s3cret") as right:
        for write in writes:
            refused = write(anonymous)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            assert write(wrong).status_code == 403
        assert anonymous.get("/training/metrics").json()["total"] == 0
        for write in writes:
            assert write(right).status_code == 200
        assert anonymous.get("/health").json()["writes_need_token"] is True
        assert anonymous.get("/training/dashboard").status_code == 200


@pytest.mark.slow
def test_empty_store_then_data_survives_a_restart_after_sigterm(start_server, database, model_file):
    server = start_server()
    with server.client() as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["version"] and health["database"].endswith(database.name)
        assert client.get("/training/metrics").json() == {"metrics": [], "total": 0, "limit": 1000, "offset": 0}
        assert client.get("/training/metrics/latest").json() == {"metrics": None}  # nothing top-level either
        assert client.get("/training/models").json() == {"models": [], "total": 0}
        empty = client.get("/training/dashboard").json()
        assert (empty["status"], empty["runs"], empty["latest_metrics"], empty["latest_model"]) == (
            "idle",
            [],
            None,
            None,
        )
        post(client, "persist", 7, iteration_metrics(7), reliability=RELIABILITY)
        upload(client, model_file, "persist", "iter_0007", iteration=7)
    assert server.stop(signal.SIGTERM) == 0
    assert database.integrity_problems() == []

    again = start_server()
    with again.client() as client:
        latest = client.get("/training/metrics/latest").json()["metrics"]
        assert latest["iteration"] == 7 and latest["loss_total"] == iteration_metrics(7)["loss_total"]
        assert latest["reliability"] == RELIABILITY
        model = client.get("/training/models/latest").json()["model"]
        assert client.get(model["download_url"]).content == model_file.read_bytes()
    assert again.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_a_killed_upload_leaves_nothing_half_stored(start_server, database, model_file):
    server = start_server()
    content = model_file.read_bytes()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="run"\r\n\r\nkilled\r\n'
        b'--b\r\nContent-Disposition: form-data; name="version"\r\n\r\niter_0001\r\n'
        b'--b\r\nContent-Disposition: form-data; name="iteration"\r\n\r\n1\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.pt"\r\n\r\n' + content + b"\r\n--b--\r\n"
    )
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            b"POST /training/models HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        time.sleep(1.0)
        server.stop(signal.SIGKILL)
    assert database.integrity_problems() == []
    again = start_server()
    with again.client() as client:
        assert client.get("/training/models").json()["total"] == 0
    assert not list(database.models_dir.glob("*.pt"))


# --- many clients, two servers, one database ---------------------------------------------


@pytest.mark.slow
def test_twenty_concurrent_clients_on_two_servers_lose_and_duplicate_nothing(start_server, database, model_file):
    servers = [start_server(), start_server()]
    iterations, failures = 5, []

    def client_work(index: int) -> None:
        run = f"client-{index:02d}"
        try:
            with servers[index % 2].client() as client:
                for iteration in range(iterations):
                    for _attempt in range(2):  # every post sent twice, as a retry after a lost reply would
                        response = post(client, run, iteration, iteration_metrics(iteration, offset=index))
                        assert response.status_code == 200, response.text
                response = upload(client, model_file, run, f"iter_{index:04d}", iteration=index)
                assert response.status_code == 200, response.text
        except BaseException as error:  # collected and reported by the main thread
            failures.append(f"{run}: {error!r}")

    threads = [threading.Thread(target=client_work, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures

    with servers[0].client() as client:
        page = client.get("/training/metrics", params={"limit": 1000}).json()
        assert page["total"] == 20 * iterations
        seen = {(e["run"], e["iteration"]) for e in page["metrics"]}
        assert len(seen) == 20 * iterations
        for entry in page["metrics"]:
            index = int(entry["run"].split("-")[1])
            assert entry["loss_total"] == pytest.approx(
                iteration_metrics(entry["iteration"], offset=index)["loss_total"]
            )
        models = client.get("/training/models").json()
        assert models["total"] == 20
        assert {m["version"] for m in models["models"]} == {f"iter_{i:04d}" for i in range(20)}
    with servers[1].client() as client:
        assert client.get("/training/dashboard").json()["iterations"] == 20 * iterations
    for server in servers:
        assert server.stop() == 0
    assert database.integrity_problems() == []


# --- schema and the game API of the real server -------------------------------------------------


def test_openapi_schema_describes_every_endpoint(shared_server):
    with shared_server.client() as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        ("/health", "get"),
        ("/training/metrics", "post"),
        ("/training/metrics", "get"),
        ("/training/metrics/latest", "get"),
        ("/training/metric-names", "get"),
        ("/training/dashboard", "get"),
        ("/training/clear", "delete"),
        ("/training/models", "post"),
        ("/training/models", "get"),
        ("/training/models/latest", "get"),
        ("/training/models/{version}/download", "get"),
        ("/game/new", "post"),
        ("/game/{game_id}", "get"),
        ("/game/{game_id}/play", "post"),
        ("/game/{game_id}/ai", "post"),
    }
    assert expected <= {(path, method) for path, methods in paths.items() for method in methods}
    components = schema["components"]["schemas"]
    for path, method in expected - {("/training/models/{version}/download", "get")}:
        ok = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (path, method)
    entry = components["MetricsEntry"]["properties"]
    assert {"run", "iteration", "timestamp", "loss_total", "value_loss_quartic", "reliability"} <= set(entry)
    assert set(components["MetricsPost"]["required"]) == {"run", "iteration"}
    upload_body = paths["/training/models"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    assert (
        "application/octet-stream" in paths["/training/models/{version}/download"]["get"]["responses"]["200"]["content"]
    )
    refs = {m for m in json.dumps(schema).split('"') if m.startswith("#/components/schemas/")}
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(components)
    assert any("HTTPBearer" in s for s in schema["components"]["securitySchemes"])


def test_the_real_server_plays_a_game_with_its_default_ai(shared_server):
    with shared_server.client() as client:
        game = client.post("/game/new", json={"human_side": 0, "simulations": 8}).json()
        assert game["legal_moves"][:3] == ["b1-a3", "b1-c3", "b1-d2"] and game["status"] == "Your move."
        refused = client.post(f"/game/{game['id']}/play", json={"action": "b1-b2"})
        assert refused.status_code == 400 and "not a knight's jump" in refused.json()["detail"]
        after = client.post(f"/game/{game['id']}/play", json={"action": "b1-c3"}).json()
        assert after["to_move"] == 1 and after["record"] == ["b1-c3"]
        replied = client.post(f"/game/{game['id']}/ai").json()
        assert replied["to_move"] == 0 and replied["last_ai_actions"] and len(replied["record"]) == 2
