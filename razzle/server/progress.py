"""What a training run is doing right now: the iteration in progress and its phase.

Metrics arrive once per iteration, so between two of them (and before the first) the
store alone cannot tell a busy run from a dead one. The training loop reports its progress
(self-play games played, training steps, evaluation games) to a `ProgressBoard`, which keeps
only the newest report of each run, in memory: progress is ephemeral, a restarted server
simply waits for the next report, and nothing of it goes into the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Phase = Literal["selfplay", "training", "evaluation", "finished"]
PHASES: tuple[str, ...] = ("selfplay", "training", "evaluation", "finished")


@dataclass(frozen=True)
class ProgressReport:
    """One run's newest report: `done` of `total` units of `phase` in `iteration`
    (games for self-play and evaluation, whatever the loop counts for training);
    `finished` means the iteration is complete. `reported_at` is the board's clock
    (seconds since the epoch) when the report arrived; `actors`: the run's self-play
    actors (ActorStatus as dictionaries), if it has any."""

    run: str
    iteration: int
    phase: Phase
    done: int
    total: int
    reported_at: float
    actors: tuple[dict, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


class ProgressBoard:
    """The newest progress report per run; safe to use from any thread."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._reports: dict[str, ProgressReport] = {}

    def report(
        self, run: str, iteration: int, phase: Phase, done: int, total: int, actors: Sequence[dict] = ()
    ) -> ProgressReport:
        """Record a report; it replaces the run's previous one, whatever that said."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
        if iteration < 0 or done < 0 or total < 0 or done > total:
            raise ValueError(f"need 0 <= done <= total and iteration >= 0, got {iteration=}, {done=}, {total=}")
        entry = ProgressReport(run, iteration, phase, done, total, self._clock(), tuple(actors))
        with self._lock:
            self._reports[run] = entry
        return entry

    def snapshot(self) -> list[ProgressReport]:
        """The newest report of every run, newest first."""
        with self._lock:
            reports = list(self._reports.values())
        return sorted(reports, key=lambda r: r.reported_at, reverse=True)

    def now(self) -> float:
        return self._clock()
