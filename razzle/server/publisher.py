"""The trainer's side: publish every iteration's metrics and exported model.

`TrainingPublisher` is a handler of the training loop (razzle.train.report): the loop
starts it, hands it each iteration's report and closes it, on the process of global rank 0.
With `server.url` set, updates go to that server through a background `TrainingClient`
(a slow or absent server never stops training). Without it they go straight into a SQLite
store in the run folder, and, unless turned off, a dashboard is served from the training
process itself, so `python train.py` shows its dashboard with no extra step; afterwards
`razzle serve --db <run>/metrics.db` serves the same store.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from razzle.server.client import TrainingClient, default_worker_name
from razzle.server.names import label_problem, metric_name_problem, metric_value_problem
from razzle.server.replays import run_name_of
from razzle.train.report import IterationReport, Progress

log = logging.getLogger(__name__)
STORE_FILE = "metrics.db"


class TrainingPublisher:
    """Publishes each iteration report (`on_iteration`), or any metrics (`publish_iteration`).

    run:      the run's name on the dashboard; None: the name of `run_dir` (Hydra's run folder).
    url:      server address (e.g. http://127.0.0.1:8000); None writes `run_dir/metrics.db`.
    token:    bearer token for a server that needs one.
    embedded: without `url`, serve the dashboard from this process on `host:port`
              (the next free port if that one is taken).
    """

    def __init__(
        self,
        run: str | None = None,
        url: str | None = None,
        token: str | None = None,
        run_dir: str | Path = ".",
        embedded: bool = True,
        host: str = "127.0.0.1",
        port: int = 8000,
    ):
        self.run_dir = Path(run_dir)
        self.run = run or run_name_of(self.run_dir)
        if label_problem("run name", self.run):
            raise ValueError(f"server.run: {label_problem('run name', self.run)}")
        self.url = url.rstrip("/") if url else None
        self.token = token or None
        self.embedded = embedded
        self.host = host
        self.port = port
        self.dashboard_url: str | None = None
        self._client: TrainingClient | None = None
        self._store = None
        self._server = None
        self._server_thread: threading.Thread | None = None
        self._board = None
        self._warned: set[str] = set()

    # --- the training loop's handler -------------------------------------------------------
    def on_run_start(self, previous: Sequence[IterationReport]) -> None:
        """Earlier iterations were published by the session that ran them."""
        self.start()

    def on_iteration(self, report: IterationReport) -> None:
        """The report's metrics, its training epoch's as `x_train_<name>` (the store's
        names have no '/'), the reliability diagram and the exported model."""
        metrics = {**report.metrics(), **{f"x_train_{name}": value for name, value in report.training.items()}}
        self.publish_iteration(None, report.iteration, metrics, report.model_path, report.reliability)
        self.publish_progress(report.iteration, "finished", 1, 1)

    def on_progress(self, progress: Progress) -> None:
        actors = [actor.as_dict() for actor in progress.actors]
        self.publish_progress(progress.iteration, progress.phase, progress.done, progress.total, actors)

    def on_run_end(self) -> None:
        self.close()

    # --- the publishing side ---------------------------------------------------------------
    def start(self) -> None:
        """Connect (or open the local store and its dashboard) and print the address."""
        if self._client is not None or self._store is not None:
            return
        if self.url:
            self._client = TrainingClient(self.url, token=self.token, worker=default_worker_name())
            self.dashboard_url = f"{self.url}/dashboard"
        else:
            from razzle.server.store import MetricsStore

            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._store = MetricsStore(self.run_dir / STORE_FILE)
            if self.embedded:
                self.dashboard_url = self._serve_embedded()
        where = self.dashboard_url or f"run `razzle serve --db {self.run_dir / STORE_FILE}`, then open /dashboard"
        print(f"dashboard: {where}", flush=True)

    def publish_iteration(
        self,
        run: str | None,
        iteration: int,
        metrics: Mapping[str, object],
        model_path: str | Path | None = None,
        reliability: Mapping[str, Sequence[float]] | Sequence[Sequence[float]] | None = None,
    ) -> None:
        """Record one iteration: metrics (numbers or 0-d tensors), optionally the exported
        model file (its stem is the version, e.g. iter_0007) and the reliability diagram
        (`ValueCalibrationError.reliability()`, or rows of mean value, mean outcome,
        count). Never raises for a server problem. NaN means "nothing measured" (see
        razzle.train.metrics) and is left out; a name or value the store would refuse is
        dropped with one warning per name."""
        self.start()
        run = run or self.run
        clean = self._clean(metrics)
        bins = _reliability_rows(reliability) if reliability is not None else None
        if self._client is not None:
            if clean or bins is not None:
                payload = (
                    None
                    if bins is None
                    else [dict(zip(("mean_value", "mean_outcome", "count"), b, strict=True)) for b in bins]
                )
                self._client.post_metrics(run, iteration, clean, payload)
            if model_path is not None:
                self._client.upload_model(run, Path(model_path).stem, iteration, model_path)
            return
        self._write_locally(run, iteration, clean, bins, model_path)

    def publish_progress(
        self, iteration: int, phase: str, done: int, total: int, actors: Sequence[Mapping] = ()
    ) -> None:
        """Where the run is within `iteration`: `done` of `total` units of `phase`
        ("selfplay" and "evaluation" count games; "finished": the iteration is complete),
        with its self-play actors (`ActorStatus.as_dict()`) when it has any.
        Goes to the embedded dashboard's board, or to the server best effort; never
        raises for a server problem and never waits for one. Call it often (e.g. per game
        and per epoch): the dashboard shows a run as active while its report is fresh."""
        self.start()
        if self._client is not None:
            self._client.post_progress(self.run, iteration, phase, done, total, actors)
        elif self._board is not None:
            self._board.report(self.run, iteration, phase, done, total, [dict(actor) for actor in actors])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.should_exit = True
            self._server_thread.join(timeout=10)
            self._server = None
            self._board = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- details ---------------------------------------------------------------------------
    def _clean(self, metrics: Mapping[str, object]) -> dict[str, float]:
        clean = {}
        for name, value in metrics.items():
            number = value.item() if hasattr(value, "item") else value
            if isinstance(number, float) and math.isnan(number):
                continue
            problem = metric_name_problem(name) or metric_value_problem(name, number)
            if problem:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning("not publishing %s (warned once per name)", problem)
                continue
            clean[name] = float(number)
        return clean

    def _write_locally(self, run, iteration, metrics, bins, model_path) -> None:
        from razzle.server.store import StoreInputError

        try:
            if metrics or bins is not None:
                self._store.record_metrics(run, iteration, metrics, bins, worker=default_worker_name())
            if model_path is not None:
                self._store.add_model(run, Path(model_path).stem, iteration, model_path, worker=default_worker_name())
        except (StoreInputError, OSError) as error:
            log.error("could not record iteration %d of %s in %s: %s", iteration, run, self.run_dir / STORE_FILE, error)

    def _serve_embedded(self) -> str:
        import uvicorn

        from razzle.server.app import create_app

        from razzle.server.progress import ProgressBoard

        listener = _listen(self.host, self.port)
        port = listener.getsockname()[1]
        if self.port and port != self.port:
            print(f"dashboard: port {self.port} on {self.host} is taken; using port {port} instead", flush=True)
        self._board = ProgressBoard()
        app = create_app(self._store, progress=self._board, replay_folders={self.run: self.run_dir / "replay"})
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, name="razzle-dashboard", daemon=True
        )
        self._server_thread.start()
        return f"http://{self.host}:{port}/dashboard"


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on `port`, or on a free port when that one is taken (the caller
    sees which from the socket and says so)."""
    for candidate in (port, 0):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((host, candidate))
        except OSError:
            listener.close()
            continue
        listener.listen(128)
        return listener
    raise OSError(f"cannot listen on {host}")


def _reliability_rows(reliability) -> list[tuple[float | None, float | None, int]]:
    """Rows (mean value, mean outcome, count) from the metric's dict of lists, from rows or
    from a [bins, 3] tensor; an empty bin's means (NaN from 0/0) become None."""
    if isinstance(reliability, Mapping):
        rows = zip(reliability["mean_value"], reliability["mean_outcome"], reliability["count"], strict=True)
    else:
        rows = reliability.tolist() if hasattr(reliability, "tolist") else reliability
    out = []
    for mean_value, mean_outcome, count in rows:
        count = int(count)
        means = [None if count == 0 or not math.isfinite(m) else float(m) for m in (mean_value, mean_outcome)]
        out.append((*means, count))
    return out
