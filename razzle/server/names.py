"""Which metric names, run names and model versions the store accepts, and why.

Metric names are a closed vocabulary: a typo such as ``loss_totl`` would otherwise be stored
happily and leave an empty chart. Known names are those of razzle.metric_names (the canonical
metrics and the iteration bookkeeping, with their descriptions); two open families
stay available without editing this file:
``eval_<opponent>_<stat>`` (evaluation matches) and ``x_<anything>`` (experiments).
Every accepted name matches ``^[a-z][a-z0-9_]{0,63}$``, so it is also a safe JSON key,
column label and chart id. Run names and versions never become file paths (model files are
stored by content hash), but they are still restricted to a plain, portable alphabet.
"""

from __future__ import annotations

import math
import re

from razzle.metric_names import KNOWN_METRICS

OPEN_FAMILIES = ("eval_", "x_")
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_METRICS_PER_POST = 256
MAX_ITERATION = 10**9
RELIABILITY_BINS = 10


def metric_name_problem(name: object) -> str | None:
    """Why `name` is refused as a metric name, or None when it is accepted."""
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        return f"malformed metric name {name!r}: use lower-case letters, digits and '_', at most 64 characters"
    if name in KNOWN_METRICS or (name.startswith(OPEN_FAMILIES) and name not in OPEN_FAMILIES):
        return None
    return (
        f"unknown metric name {name!r}: not one of the known metrics (see GET /training/metric-names); "
        "custom names must start with 'x_' (experiments) or 'eval_' (evaluations)"
    )


def metric_value_problem(name: str, value: object) -> str | None:
    """Why `value` is refused for metric `name`, or None for a finite int or float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"metric {name!r} must be a number, got {type(value).__name__} {value!r}"
    if not math.isfinite(value):
        return f"metric {name!r} must be finite, got {value!r}"
    return None


def label_problem(kind: str, text: object) -> str | None:
    """Why a run name or model version is refused, or None."""
    if not isinstance(text, str) or not _LABEL.match(text):
        return (
            f"malformed {kind} {text!r}: 1-128 characters from letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return None


def iteration_problem(iteration: object) -> str | None:
    if isinstance(iteration, bool) or not isinstance(iteration, int):
        return f"iteration must be an integer, got {iteration!r}"
    if not 0 <= iteration <= MAX_ITERATION:
        return f"iteration must be between 0 and {MAX_ITERATION}, got {iteration}"
    return None


def metrics_problems(metrics: dict) -> list[str]:
    """Every problem of a metrics dict (empty when it can be stored as a whole)."""
    if len(metrics) > MAX_METRICS_PER_POST:
        return [f"at most {MAX_METRICS_PER_POST} metrics per iteration, got {len(metrics)}"]
    problems = []
    for name, value in metrics.items():
        problem = metric_name_problem(name) or metric_value_problem(name, value)
        if problem:
            problems.append(problem)
    return problems


def reliability_problems(bins: list) -> list[str]:
    """The reliability diagram: RELIABILITY_BINS rows of (mean value, mean outcome, count).

    An empty bin (count 0) has no means: they are None there.
    """
    if len(bins) != RELIABILITY_BINS:
        return [f"the reliability diagram needs {RELIABILITY_BINS} bins, got {len(bins)}"]
    problems = []
    for index, (mean_value, mean_outcome, count) in enumerate(bins):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            problems.append(f"reliability bin {index}: count must be a non-negative integer, got {count!r}")
            continue
        for label, number in (("mean_value", mean_value), ("mean_outcome", mean_outcome)):
            if number is None and count == 0:
                continue
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not -1 <= number <= 1:
                problems.append(f"reliability bin {index}: {label} must be a number in [-1, 1], got {number!r}")
    return problems
