"""Training runs compared across seeds: the training plan's experiment, read from the CSVs.

Runs are grouped into arms by the config values that differ between them (the seed, the
run's name and where it publishes are not part of an arm). For every arm and iteration,
each compared metric gets the mean over the arm's seeds and a 95% t-interval. Arms are
set against the reference arm (the first in sorted order, e.g. ``loss.quartic=0.0``) on
each seed's mean over the last third of the iterations: the difference of the arms'
means with a 95% Welch t-interval over seeds (seeds are independent replicates; with 3
seeds per arm the interval is wide, which is the honest width). Learning speed is the
first iteration at which a run's policy top-1 reaches a threshold.

A run folder holds ``.hydra/config.yaml`` (and ``overrides.yaml``) and
``csv/version_*/metrics.csv``; the per-iteration metrics are the rows that have an
``iteration`` value, read by column name.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats

from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import ModelFileError, load_model_file
from razzle.search import MCTSPlayer, SearchConfig
from razzle.search.match import MatchResult, play_match
from razzle.search.player import OPENING_TURNS

# The training plan's "What to Compare", with the evaluation win rates and value skill.
COMPARED_METRICS = (
    "value_calibration_error",
    "value_std",
    "value_loss",
    "value_loss_quartic",
    "policy_top1_accuracy",
    "eval_random_win_rate",
    "eval_mcts_win_rate",
    "value_skill",
)
# Config keys that say how a run was launched or published, not what it trained.
NOT_ARM_KEYS = ("seed", "resume", "ckpt_path", "tags", "server.*", "hydra.*", "paths.*")
CALIBRATION_TARGET = 0.15
TOP1_TARGET = 0.40
CONFIDENCE = 0.95


class CompareError(Exception):
    """Run folders that cannot be compared; the message says why."""


@dataclass
class Run:
    path: Path
    config: dict[str, str]
    seed: str
    metrics: pd.DataFrame  # index: iteration; columns: metric names

    @property
    def iterations(self) -> list[int]:
        return [int(i) for i in self.metrics.index]


@dataclass(frozen=True)
class Interval:
    """A mean (or a difference of means) with its 95% interval; NaN bounds with one seed."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def text(self, digits: int = 3) -> str:
        if math.isnan(self.mean):
            return "-"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass
class Arm:
    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list[str]:
        return [run.seed for run in self.runs]


@dataclass
class Comparison:
    arms: list[Arm]
    metrics: list[str]
    iterations: list[int]  # common to every run
    last_third: list[int]
    per_iteration: dict[str, dict[str, list[Interval]]]  # metric -> arm -> per iteration
    last_third_means: dict[str, dict[str, Interval]]  # metric -> arm
    differences: dict[str, dict[str, Interval]]  # metric -> arm (against the reference arm)
    speed: dict[str, list[int | None]]  # arm -> iterations to the top-1 threshold, per seed
    speed_difference: dict[str, Interval]
    criteria: dict[str, dict[str, bool | None]]
    top1_threshold: float
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> Arm:
        return self.arms[0]


# --- reading runs ------------------------------------------------------------------------


def _metrics_files(folder: Path) -> list[Path]:
    versions = sorted(folder.glob("csv/version_*/metrics.csv"), key=lambda p: _number(p.parent.name))
    if versions:
        return versions
    return [folder / "metrics.csv"] if (folder / "metrics.csv").is_file() else []


def _number(name: str) -> int:
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else -1


def find_run_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Each path that is a run folder, or the run folders directly inside it (a multirun)."""
    found = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise CompareError(f"{path} is not a folder")
        if _metrics_files(path):
            found.append(path)
            continue
        inside = [p for p in path.iterdir() if p.is_dir() and _metrics_files(p)]
        inside.sort(key=lambda p: (_number(p.name), p.name))
        if not inside:
            raise CompareError(
                f"no training runs in {path}: a run folder holds csv/version_*/metrics.csv "
                "(give a run folder, or a multirun folder of them)"
            )
        found.extend(inside)
    return found


def read_metrics(folder: Path) -> pd.DataFrame:
    """The run's per-iteration metrics: the CSV rows with an ``iteration`` value, the last
    value logged for each column (later CSV versions, i.e. resumed runs, win)."""
    frames = []
    for path in _metrics_files(folder):
        try:
            frames.append(pd.read_csv(path))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise CompareError(f"{path} is not a readable metrics CSV: {error}") from None
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "iteration" not in table.columns or table["iteration"].isna().all():
        raise CompareError(f"{folder} has no per-iteration metrics (no rows with an 'iteration' value in its CSV)")
    rows = table[table["iteration"].notna()]
    columns = [c for c in rows.columns if "/" not in c and c != "iteration" and pd.api.types.is_numeric_dtype(rows[c])]
    # A column that is NaN throughout still says the metric was logged (value_skill is NaN
    # while every game is drawn), so the metric sets of runs compare by columns.
    return rows.groupby(rows["iteration"].astype(int))[columns].last()


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: str(node)}


def read_config(folder: Path) -> dict[str, str]:
    """The run's configuration as flat ``key: value`` text, unresolved (so a value derived
    from the seed, such as a run name, does not look like a difference), with the
    command-line overrides that are not config keys (``experiment=...``)."""
    config: dict[str, str] = {}
    config_file, overrides_file = folder / ".hydra" / "config.yaml", folder / ".hydra" / "overrides.yaml"
    if config_file.is_file():
        config = _flatten(OmegaConf.to_container(OmegaConf.load(config_file), resolve=False))
    if overrides_file.is_file():
        for item in OmegaConf.to_container(OmegaConf.load(overrides_file)) or []:
            key, _, value = str(item).lstrip("+~").partition("=")
            config.setdefault(key, value)
    return config


def read_run(folder: Path) -> Run:
    config = read_config(folder)
    return Run(folder, config, config.get("seed", folder.name), read_metrics(folder))


# --- grouping ----------------------------------------------------------------------------


def _is_arm_key(key: str, ignored: Sequence[str]) -> bool:
    return not any(key == pattern or (pattern.endswith(".*") and key.startswith(pattern[:-1])) for pattern in ignored)


def _sort_key(label_values: tuple[str, ...]):
    def one(value: str):
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value)

    return tuple(one(v) for v in label_values)


def group_runs(runs: list[Run], by: Sequence[str] | None = None, ignored: Sequence[str] = NOT_ARM_KEYS) -> list[Arm]:
    """Arms of runs with equal values of `by` (default: every config key whose value differs
    between the runs, except the seed and launch settings), in sorted order."""
    if by:
        missing = [(run.path, key) for run in runs for key in by if key not in run.config]
        if missing:
            path, key = missing[0]
            raise CompareError(f"{path} has no config value {key!r} to group by")
        keys = list(by)
    else:
        every = sorted(set().union(*(run.config for run in runs)))
        keys = [k for k in every if _is_arm_key(k, ignored) and len({run.config.get(k, "-") for run in runs}) > 1]
    arms: dict[tuple[str, ...], list[Run]] = {}
    for run in runs:
        arms.setdefault(tuple(run.config.get(k, "-") for k in keys), []).append(run)
    ordered = sorted(arms, key=_sort_key)
    labelled = []
    for values in ordered:
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "all runs"
        seeds = [run.seed for run in arms[values]]
        if len(set(seeds)) < len(seeds):
            raise CompareError(
                f"arm {label} has several runs with the same seed ({', '.join(str(r.path) for r in arms[values])}): "
                "they differ in something else; name the keys to group by with --by"
            )
        labelled.append(Arm(label, sorted(arms[values], key=lambda run: _sort_key((run.seed,)))))
    return labelled


# --- statistics --------------------------------------------------------------------------


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean and 95% t-interval of independent values (NaN ones dropped)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if len(x) == 1:
        return Interval(float(x[0]), math.nan, math.nan, 1)
    half = stats.t.ppf((1 + CONFIDENCE) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return Interval(float(x.mean()), float(x.mean() - half), float(x.mean() + half), len(x))


def difference_interval(reference: Sequence[float], other: Sequence[float]) -> Interval:
    """mean(other) - mean(reference) with a 95% Welch t-interval (unequal variances)."""
    a = np.asarray([v for v in reference if not math.isnan(v)], dtype=float)
    b = np.asarray([v for v in other if not math.isnan(v)], dtype=float)
    if len(a) == 0 or len(b) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    difference = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(difference, math.nan, math.nan, min(len(a), len(b)))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return Interval(difference, difference, difference, min(len(a), len(b)))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf((1 + CONFIDENCE) / 2, dof) * math.sqrt(va + vb)
    return Interval(difference, difference - half, difference + half, min(len(a), len(b)))


def iterations_to_reach(run: Run, threshold: float, iterations: Sequence[int]) -> int | None:
    """The first of `iterations` whose policy top-1 is at least `threshold` (None: never)."""
    if "policy_top1_accuracy" not in run.metrics:
        return None
    top1 = run.metrics["policy_top1_accuracy"].reindex(iterations)
    reached = top1.index[top1 >= threshold]
    return int(reached[0]) if len(reached) else None


# --- the comparison ----------------------------------------------------------------------


def _check_metric_sets(runs: list[Run]) -> list[str]:
    present = {run.path: [m for m in COMPARED_METRICS if m in run.metrics] for run in runs}
    union = [m for m in COMPARED_METRICS if any(m in p for p in present.values())]
    lacking = {path: [m for m in union if m not in metrics] for path, metrics in present.items()}
    lacking = {path: missing for path, missing in lacking.items() if missing}
    if lacking:
        detail = "; ".join(f"{path} lacks {', '.join(missing)}" for path, missing in lacking.items())
        raise CompareError(f"the runs logged different metrics, so they cannot be compared: {detail}")
    if not union:
        raise CompareError(f"none of the runs logged any of {', '.join(COMPARED_METRICS)}")
    return union


def compare(
    paths: Iterable[str | os.PathLike], by: Sequence[str] | None = None, top1_threshold: float = TOP1_TARGET
) -> Comparison:
    runs = [read_run(folder) for folder in find_run_folders(paths)]
    metrics = _check_metric_sets(runs)
    arms = group_runs(runs, by)
    notes = []
    common = sorted(set.intersection(*(set(run.iterations) for run in runs)))
    if not common:
        raise CompareError("the runs share no iteration, so there is nothing to compare")
    if any(run.iterations != common for run in runs):
        notes.append(
            f"the runs have different lengths; the comparison uses their common iterations {common[0]}-{common[-1]}"
        )
    last_third = common[-math.ceil(len(common) / 3) :]
    reference = arms[0]

    per_iteration: dict[str, dict[str, list[Interval]]] = {}
    last_means: dict[str, dict[str, Interval]] = {}
    differences: dict[str, dict[str, Interval]] = {}
    seed_means: dict[str, dict[str, list[float]]] = {}
    for metric in metrics:
        per_iteration[metric] = {
            arm.label: [mean_interval([_value(run, metric, i) for run in arm.runs]) for i in common] for arm in arms
        }
        seed_means[metric] = {
            arm.label: [_mean([_value(run, metric, i) for i in last_third]) for run in arm.runs] for arm in arms
        }
        last_means[metric] = {arm.label: mean_interval(seed_means[metric][arm.label]) for arm in arms}
        differences[metric] = {
            arm.label: difference_interval(seed_means[metric][reference.label], seed_means[metric][arm.label])
            for arm in arms[1:]
        }

    speed = {arm.label: [iterations_to_reach(run, top1_threshold, common) for run in arm.runs] for arm in arms}
    speed_difference = {}
    for arm in arms[1:]:
        reached = speed[reference.label] + speed[arm.label]
        if None in reached:
            notes.append(f"not every seed of {reference.label} and {arm.label} reached policy top-1 {top1_threshold}")
            speed_difference[arm.label] = Interval(math.nan, math.nan, math.nan, 0)
        else:
            speed_difference[arm.label] = difference_interval(speed[reference.label], speed[arm.label])

    comparison = Comparison(
        arms, metrics, common, last_third, per_iteration, last_means, differences, speed, speed_difference, {},
        top1_threshold, notes,
    )
    comparison.criteria = success_criteria(comparison)
    return comparison


def _value(run: Run, metric: str, iteration: int) -> float:
    try:
        return float(run.metrics.at[iteration, metric])
    except KeyError:
        return math.nan


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _below(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value < target


def success_criteria(comparison: Comparison) -> dict[str, dict[str, bool | None]]:
    """Per arm, the training plan's success criteria at the last common iteration (mean over
    seeds): calibration error < 0.15, policy top-1 > 0.40, and no regression in policy
    learning speed against the reference arm (neither the last-third top-1 difference lies
    wholly below 0 nor the iterations-to-threshold difference wholly above 0). None: not
    measurable (a metric not logged, or the reference arm itself)."""
    criteria = {}
    for arm in comparison.arms:
        final = {m: series[arm.label][-1].mean for m, series in comparison.per_iteration.items()}
        calibration = final.get("value_calibration_error", math.nan)
        top1 = final.get("policy_top1_accuracy", math.nan)
        regression = None
        if arm is not comparison.reference and "policy_top1_accuracy" in comparison.differences:
            top1_gap = comparison.differences["policy_top1_accuracy"][arm.label]
            speed_gap = comparison.speed_difference[arm.label]
            regression = (not math.isnan(top1_gap.high) and top1_gap.high < 0) or (
                not math.isnan(speed_gap.low) and speed_gap.low > 0
            )
        criteria[arm.label] = {
            f"calibration error < {CALIBRATION_TARGET}": _below(calibration, CALIBRATION_TARGET),
            f"policy top-1 > {TOP1_TARGET}": None if math.isnan(top1) else top1 > TOP1_TARGET,
            "no regression in policy learning speed": None if regression is None else not regression,
        }
    return criteria


# --- head to head ------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadToHead:
    """An arm's final models against the reference arm's, seed by seed (paired in seed
    order), `result` from the arm's view over all its games."""

    arm: str
    pairs: list[tuple[Path, Path, MatchResult]]

    @property
    def result(self) -> MatchResult:
        return MatchResult(*(sum(getattr(r, name) for _, _, r in self.pairs) for name in ("wins", "draws", "losses")))


def final_model(run: Run) -> Path:
    models = sorted(run.path.glob("models/iter_*.pt"), key=lambda p: _number(p.stem))
    if not models:
        raise CompareError(f"{run.path} has no model files (models/iter_NNNN.pt) for the arena")
    return models[-1]


def head_to_head(
    comparison: Comparison,
    games: int,
    simulations: int = 64,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> list[HeadToHead]:
    """Every other arm's final models against the reference arm's: `games` games per pair
    of seeds, colours alternated, `simulations` per move, no root noise, the first
    OPENING_TURNS moves sampled in proportion to visits (so that the games differ)."""
    search = SearchConfig(simulations=simulations)
    duels = []
    for arm in comparison.arms[1:]:
        pairs = []
        for mine, theirs in zip(arm.runs, comparison.reference.runs):
            files = final_model(mine), final_model(theirs)
            try:
                (network, metadata), (opponent, _) = (load_model_file(path, device) for path in files)
            except ModelFileError as error:
                raise CompareError(str(error)) from None
            rules = Rules(**metadata["rules"]) if isinstance(metadata.get("rules"), dict) else Rules()
            first = MCTSPlayer(NetworkEvaluator(network, device), search, seed=seed, opening_turns=OPENING_TURNS)
            second = MCTSPlayer(NetworkEvaluator(opponent, device), search, seed=seed + 1, opening_turns=OPENING_TURNS)
            pairs.append((*files, play_match(first, second, games, rules, progress=progress)))
        duels.append(HeadToHead(arm.label, pairs))
    return duels
