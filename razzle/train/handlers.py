"""Handlers of the training loop: the Lightning loggers (one row per iteration) and the
training plan's targets and red flags in the run's log."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from lightning.pytorch.loggers import Logger

from razzle.metric_targets import parse_targets
from razzle.train.report import IterationReport

log = logging.getLogger(__name__)
STATUS_WORDS = {"ok": "ok", "watch": "watch", "red_flag": "RED FLAG"}


class LoggerHandler:
    """Logs every iteration report to each Lightning logger (CSV, W&B, TensorBoard) at the
    trainer's global step, under the canonical names plus `iteration`. Lightning's own
    per-epoch rows (`train/*`, `val/*`) stay as they are."""

    def __init__(self, loggers: Sequence[Logger]):
        self.loggers = list(loggers)

    def on_run_start(self, previous: Sequence[IterationReport]) -> None:
        """Earlier iterations were logged by the session that ran them."""

    def on_iteration(self, report: IterationReport) -> None:
        row = {"iteration": float(report.iteration), **report.metrics()}
        for logger in self.loggers:
            logger.log_metrics(row, step=report.global_step)
            logger.save()  # a killed run keeps every finished iteration's row

    def on_run_end(self) -> None:
        for logger in self.loggers:
            logger.save()


class TargetsLog:
    """Logs each iteration's status against the training plan's targets and red flags
    (conf/targets: phases of iterations, a target and a red flag per metric), one line:
    `iteration 12 (mid): policy_top1_accuracy 0.33 ok, value_std 0.12 RED FLAG (< 0.2)`."""

    def __init__(self, phases: Mapping):
        self.targets = parse_targets({"phases": dict(phases)}, "conf/targets")

    def on_run_start(self, previous: Sequence[IterationReport]) -> None:
        """Nothing to do: the earlier iterations' lines are in the earlier session's log."""

    def on_iteration(self, report: IterationReport) -> None:
        statuses = self.targets.assess(report.iteration, report.metrics())
        if not statuses:
            return
        parts = []
        for status in statuses:
            word = STATUS_WORDS[status["status"]]
            if status["status"] != "ok":
                better = "<" if status["target"] < status["red_flag"] else ">"
                word += f" (target {better} {status['target']:g}, red flag at {status['red_flag']:g})"
            parts.append(f"{status['metric']} {status['value']:.3g} {word}")
        level = logging.WARNING if any(s["status"] == "red_flag" for s in statuses) else logging.INFO
        log.log(level, "iteration %d (%s): %s", report.iteration, statuses[0]["phase"], ", ".join(parts))

    def on_run_end(self) -> None:
        """Nothing to flush."""
