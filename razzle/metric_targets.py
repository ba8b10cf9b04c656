"""The training plan's targets and red flags per phase of training, and the status of a
metric against them (ok / watch / red_flag); the config is conf/targets/default.yaml.

Plain data (no Hydra instantiation), beside the metric names so that both sides read it:
the server shows it and the training loop logs the same statuses every iteration
(`razzle.train.handlers.TargetsLog`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from razzle.metric_names import KNOWN_METRICS

DEFAULT_TARGETS = Path(__file__).parents[1] / "conf" / "targets" / "default.yaml"


class TargetsError(ValueError):
    """A targets file that is missing or malformed; the message names the problem."""


@dataclass(frozen=True)
class Band:
    """A metric's target and red flag in one phase; lower is better when target < red_flag."""

    metric: str
    target: float
    red_flag: float

    @property
    def lower_is_better(self) -> bool:
        return self.target < self.red_flag

    def status(self, value: float) -> str:
        sign = 1.0 if self.lower_is_better else -1.0
        if sign * value < sign * self.target:
            return "ok"
        if sign * value > sign * self.red_flag:
            return "red_flag"
        return "watch"

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "target": self.target,
            "red_flag": self.red_flag,
            "lower_is_better": self.lower_is_better,
        }


@dataclass(frozen=True)
class Phase:
    name: str
    first_iteration: int
    last_iteration: int | None  # None: until the end of the run
    bands: tuple[Band, ...]

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "first_iteration": self.first_iteration,
            "last_iteration": self.last_iteration,
            "bands": [b.as_dict() for b in self.bands],
        }


@dataclass(frozen=True)
class Targets:
    phases: tuple[Phase, ...] = ()

    def phase_of(self, iteration: int) -> Phase | None:
        for phase in self.phases:
            last = math.inf if phase.last_iteration is None else phase.last_iteration
            if phase.first_iteration <= iteration <= last:
                return phase
        return None

    def assess(self, iteration: int, metrics: Mapping[str, float | None]) -> list[dict]:
        """The status of every metric the phase of `iteration` watches and `metrics` holds."""
        phase = self.phase_of(iteration)
        if phase is None:
            return []
        out = []
        for band in phase.bands:
            value = metrics.get(band.metric)
            if value is None or not math.isfinite(value):
                continue
            out.append({**band.as_dict(), "phase": phase.name, "value": value, "status": band.status(value)})
        return out

    def as_dict(self) -> dict:
        return {"phases": [p.as_dict() for p in self.phases]}


def load_targets(path: str | Path = DEFAULT_TARGETS) -> Targets:
    """Read and check a targets file (see conf/targets/default.yaml for its shape)."""
    path = Path(path)
    if not path.is_file():
        raise TargetsError(f"targets file {path} does not exist")
    try:
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or error
        raise TargetsError(f"{path} is not a readable YAML file: {problem}{where}") from None
    except (OmegaConfBaseException, ValueError, OSError) as error:
        raise TargetsError(f"{path} is not a readable YAML file: {error}") from None
    return parse_targets(raw, str(path))


def parse_targets(raw: object, where: str = "targets") -> Targets:
    phases = raw.get("phases") if isinstance(raw, dict) else None
    if not isinstance(phases, dict) or not phases:
        raise TargetsError(f"{where}: needs a non-empty mapping `phases: {{name: {{first_iteration, metrics}}}}`")
    starts = []
    for name, phase in phases.items():
        first = phase.get("first_iteration") if isinstance(phase, dict) else None
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            raise TargetsError(f"{where}: phase {name!r} needs first_iteration, an integer >= 0")
        starts.append((first, name, phase))
    starts.sort(key=lambda s: s[0])
    if starts[0][0] != 0 or len({s[0] for s in starts}) != len(starts):
        raise TargetsError(f"{where}: the first phase must start at iteration 0 and no two phases at the same one")
    built = []
    for i, (first, name, phase) in enumerate(starts):
        last = starts[i + 1][0] - 1 if i + 1 < len(starts) else None
        built.append(Phase(str(name), first, last, _bands(phase.get("metrics"), f"{where}: phase {name!r}")))
    return Targets(tuple(built))


def _bands(metrics: object, where: str) -> tuple[Band, ...]:
    if not isinstance(metrics, dict) or not metrics:
        raise TargetsError(f"{where} needs `metrics: {{name: {{target, red_flag}}}}`")
    bands = []
    for name, band in metrics.items():
        if name not in KNOWN_METRICS:
            raise TargetsError(f"{where}: {name!r} is not a known metric name")
        numbers = [band.get(key) if isinstance(band, dict) else None for key in ("target", "red_flag")]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            raise TargetsError(f"{where}: {name} needs finite numbers `target` and `red_flag`")
        if numbers[0] == numbers[1]:
            raise TargetsError(f"{where}: {name}'s target equals its red flag; which side is better?")
        bands.append(Band(name, float(numbers[0]), float(numbers[1])))
    return tuple(bands)
