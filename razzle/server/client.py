"""Sending metrics and model files to a razzle server without ever holding up training.

Calls only enqueue; one background thread sends in order. A failed send is retried a few
times with exponential backoff; if the server stays unreachable the items stay buffered and
the thread keeps probing, backing off up to a minute, and sends them once it answers. The
log says "unreachable, buffering" once when the server goes away and once when it is back,
never once per step. Every request is idempotent on the server (an iteration merges, a
model version replaces), so a send retried after a lost reply never duplicates anything.

Progress reports are best effort instead: only the newest per run is kept, it is sent
once (before any queued update, as it is small and only worth anything while fresh),
and it is dropped if that fails or while the server is unreachable.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


def default_worker_name() -> str:
    """host-pid: tells the dashboard's workers table which process sent what."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())[:100] or "host"
    return f"{host}-{os.getpid()}"


@dataclass(frozen=True)
class _MetricsItem:
    run: str
    iteration: int
    metrics: dict[str, float]
    reliability: list[dict] | None

    def describe(self) -> str:
        return f"metrics of {self.run} iteration {self.iteration}"


@dataclass(frozen=True)
class _ModelItem:
    run: str
    version: str
    iteration: int
    path: Path

    def describe(self) -> str:
        return f"model {self.run} {self.version}"


@dataclass(frozen=True)
class _ProgressItem:
    run: str
    iteration: int
    phase: str
    done: int
    total: int
    actors: list[dict]


class _Unreachable(Exception):
    """The server did not answer usefully; the item stays buffered."""


class TrainingClient:
    """Background sender to `url`; see the module docstring for the failure behaviour."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        worker: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        max_pending: int = 100_000,
    ):
        self.url = url.rstrip("/")
        self.worker = worker or default_worker_name()
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_pending = max_pending
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._pending: deque[_MetricsItem | _ModelItem] = deque()
        self._progress: dict[str, _ProgressItem] = {}
        self._idle = False
        self._progress_refused = False
        self._condition = threading.Condition()
        self._closing = False
        self._down_since: float | None = None
        self._dropped = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="razzle-training-client", daemon=True)
        self._thread.start()

    # --- what the trainer calls ----------------------------------------------------------
    def post_metrics(
        self, run: str, iteration: int, metrics: Mapping[str, float], reliability: Sequence[dict] | None = None
    ) -> None:
        self._enqueue(_MetricsItem(run, iteration, dict(metrics), list(reliability) if reliability else None))

    def upload_model(self, run: str, version: str, iteration: int, path: str | os.PathLike) -> None:
        self._enqueue(_ModelItem(run, version, iteration, Path(path)))

    def post_progress(
        self, run: str, iteration: int, phase: str, done: int, total: int, actors: Sequence[Mapping] = ()
    ) -> None:
        """Report where the run is (and its self-play actors, if any); replaces any report
        of this run not sent yet. Never blocks and never raises for a server problem (see
        the module docstring)."""
        with self._condition:
            if self._closing or self._down_since is not None:
                return
            self._progress[run] = _ProgressItem(run, iteration, phase, done, total, [dict(a) for a in actors])
            if self._idle:  # never cut short a backoff pause; a busy thread sends it next
                self._condition.notify_all()

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._pending)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is sent (or refused); False if time ran out."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> int:
        """Send what is queued for up to `timeout` seconds, then stop; returns what is left."""
        self.flush(timeout)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout=self._http.timeout.read or 10.0)
        self._http.close()
        left = self.pending
        if left:
            log.warning("%d updates could not be sent to %s before shutdown; they are lost", left, self.url)
        return left

    # --- the sending thread ----------------------------------------------------------------
    def _enqueue(self, item: _MetricsItem | _ModelItem) -> None:
        with self._condition:
            if self._closing:
                raise RuntimeError("the training client is closed")
            if len(self._pending) >= self.max_pending:
                self._pending.popleft()
                self._dropped += 1
                if self._dropped == 1:
                    log.warning("more than %d updates buffered for %s: dropping the oldest", self.max_pending, self.url)
            self._pending.append(item)
            self._condition.notify_all()

    def _run(self) -> None:
        pause = self.backoff
        while True:
            with self._condition:
                self._idle = True
                while not self._pending and not self._progress and not self._closing:
                    self._condition.wait()
                self._idle = False
                if self._closing:
                    return
                progress, self._progress = list(self._progress.values()), {}
                item = self._pending[0] if self._pending else None
            for report in progress:
                self._send_progress(report)
            if item is None:
                continue
            try:
                self._send_with_retries(item)
            except _Unreachable as error:
                self._note_down(error)
                with self._condition:
                    self._condition.wait(pause)
                pause = min(pause * 2, self.max_backoff)
                continue
            pause = self.backoff
            self._note_up()
            with self._condition:
                if self._pending and self._pending[0] is item:
                    self._pending.popleft()
                self._condition.notify_all()

    def _send_with_retries(self, item: _MetricsItem | _ModelItem) -> None:
        if isinstance(item, _ModelItem) and not item.path.is_file():
            log.error("cannot upload %s: %s is not a file", item.describe(), item.path)
            return
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                response = self._send(item)
            except (httpx.TransportError, OSError) as error:
                failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            else:
                if response.status_code < 400:
                    self.sent += 1
                    return
                if response.status_code not in RETRYABLE_STATUS:
                    log.error(
                        "the server refused the %s: %s %s", item.describe(), response.status_code, _detail(response)
                    )
                    return
                failure = f"HTTP {response.status_code}"
            if attempt < self.retries:
                with self._condition:
                    if self._closing:
                        break
                    self._condition.wait(delay)
                delay *= 2
        raise _Unreachable(failure)

    def _send_progress(self, item: _ProgressItem) -> None:
        body = asdict(item)
        if not body["actors"]:
            del body["actors"]
        try:
            response = self._http.post("/training/progress", json=body)
        except (httpx.TransportError, OSError) as error:
            log.debug("progress report to %s not sent: %s", self.url, error)
            return
        if response.status_code >= 400 and not self._progress_refused:
            self._progress_refused = True
            log.warning(
                "the server refused a progress report (warned once): %s %s", response.status_code, _detail(response)
            )

    def _send(self, item: _MetricsItem | _ModelItem) -> httpx.Response:
        if isinstance(item, _MetricsItem):
            body = {"run": item.run, "iteration": item.iteration, "metrics": item.metrics, "worker": self.worker}
            if item.reliability is not None:
                body["reliability"] = item.reliability
            return self._http.post("/training/metrics", json=body)
        with open(item.path, "rb") as handle:
            form = {"run": item.run, "version": item.version, "iteration": str(item.iteration), "worker": self.worker}
            return self._http.post("/training/models", data=form, files={"file": (item.path.name, handle)})

    def _note_down(self, error: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "server %s unreachable (%s), buffering %d updates and retrying in the background; training goes on",
                self.url,
                error,
                self.pending,
            )

    def _note_up(self) -> None:
        if self._down_since is not None:
            log.warning(
                "server %s reachable again after %.0f s; sending the buffered updates",
                self.url,
                time.monotonic() - self._down_since,
            )
            self._down_since = None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:500]
