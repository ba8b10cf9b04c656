"""How well a network's value predicts game outcomes, on positions it has not trained on.

The training plan's post-training validation. The positions come from fresh self-play
games of the model (as training measures each iteration's games before training on them)
or from a replay folder. The figures use the training metrics' own definitions
(`razzle.train.metrics`), so they compare with the logged ones:

- calibration error: equal-width bins of v over [-1, 1]; per bin |mean v - mean z|,
  weighted by the bin's share of positions (`value_calibration_error`);
- value skill: 1 - MSE(v, z) / MSE of the constant mean-outcome predictor (`value_skill`);
- Brier score: mean (p - o)^2 with p = (1 + v) / 2 and o = (1 + z) / 2 (a draw is 1/2), so
  MSE / 4, with Murphy's decomposition over the same bins: reliability - resolution +
  uncertainty, plus a within-bin term (the spread of v inside each bin) that makes the
  sum exact. Value skill is the Brier skill score: 1 - Brier / uncertainty;
- confidently wrong: the share of positions with |v| > 0.5 whose sign is the loser's.

Beside the network's value, the same figures of the search's root value q on the same
positions (recorded with each self-play sample): how much the search knows about the
outcome beyond the value head, which tells a value that cannot learn more (q no better)
from one that lags what its own search finds (q much better).
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.network import RazzleNet
from razzle.search import SearchConfig
from razzle.selfplay.games import SelfPlayConfig, play_games
from razzle.train.metrics import CONFIDENT_VALUE, ValueCalibrationError, ValueSkill
from razzle.model.samples import SampleFileError, Samples, shard_paths

PHASE_TURNS = 20
_ITERATION = re.compile(r"^iter_(\d{4,})$")


class CalibrationInputError(Exception):
    """Positions that cannot be analysed; the message says why."""


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    mean_value: float
    mean_outcome: float


@dataclass(frozen=True)
class Phase:
    """The figures of the positions with first_turn <= turn <= last_turn."""

    first_turn: int
    last_turn: int
    count: int
    calibration_error: float
    value_mse: float
    value_skill: float
    confidently_wrong: float
    search_value_skill: float | None = None


@dataclass(frozen=True)
class CalibrationReport:
    positions: int
    calibration_error: float
    brier: float
    value_mse: float
    value_skill: float
    brier_reliability: float
    brier_resolution: float
    brier_uncertainty: float
    brier_within_bin: float
    confident_share: float
    confidently_wrong: float
    bins: list[Bin]
    phases: list[Phase]
    search_calibration_error: float | None = None
    search_value_skill: float | None = None
    search_bins: list[Bin] | None = None

    def to_dict(self) -> dict:
        """Plain JSON values (NaN becomes None)."""
        return _finite(asdict(self))


def _finite(item):
    if isinstance(item, float):
        return item if math.isfinite(item) else None
    if isinstance(item, dict):
        return {key: _finite(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_finite(value) for value in item]
    return item


def replay_samples(directory: str | os.PathLike) -> tuple[Samples, list[Path], bool]:
    """Every sample shard under a folder (a run folder's ``replay/``, a ``replay/``, one
    ``iter_NNNN/``, or any folder of ``*.pt`` shards), the shards' paths, and whether all
    of them recorded the search's root values (shards older than that did not)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationInputError(f"replay folder {directory} does not exist")
    if (directory / "replay").is_dir():  # a run folder: its models are no sample shards
        directory = directory / "replay"
    paths = shard_paths(directory)
    if not paths:
        raise CalibrationInputError(
            f"replay folder {directory} holds no sample shards (*.pt, e.g. iter_0000/samples.pt)"
        )
    shards, searched = [], True
    try:
        for path in paths:
            try:
                shards.append(Samples.load(path, require_search_value=True))
            except SampleFileError:
                shards.append(Samples.load(path))  # raises again unless only the search values are missing
                searched = False
    except SampleFileError as error:
        raise CalibrationInputError(str(error)) from None
    samples = Samples.cat(shards)
    if len(samples) == 0:
        raise CalibrationInputError(f"replay folder {directory} holds no positions")
    return samples, paths, searched


def trained_shards(model: str | os.PathLike, shards: list[Path]) -> list[Path]:
    """The shards that the model has trained on, as far as the run layout tells: model
    ``<run>/models/iter_K.pt`` has trained on ``<run>/replay/iter_J`` for J <= K."""
    model = Path(model).resolve()
    own = _ITERATION.match(model.stem)
    if not own or model.parent.name != "models":
        return []
    replay = model.parent.parent / "replay"
    trained = []
    for shard in shards:
        folder = shard.resolve().parent
        played = _ITERATION.match(folder.name)
        if played and folder.parent == replay and int(played.group(1)) <= int(own.group(1)):
            trained.append(shard)
    return trained


def fresh_samples(
    network: RazzleNet, rules: Rules, games: int, search: SearchConfig, seed: int = 0, device: str = "cpu"
) -> Samples:
    """The positions of `games` new self-play games of the network (root noise and
    temperature as in training), with their outcomes."""
    config = SelfPlayConfig(games=games, parallel=min(games, 64))
    return play_games(NetworkEvaluator(network, device), search, config, rules, seed=seed).samples


@torch.inference_mode()
def predict_values(
    network: RazzleNet, planes: torch.Tensor, device: str = "cpu", batch_size: int = 1024
) -> torch.Tensor:
    """[N] the network's value of each position (side to move's view), on the CPU."""
    network = network.to(device).eval()
    parts = [network(chunk.to(device)).value.float().cpu() for chunk in planes.split(batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _core(value: torch.Tensor, outcome: torch.Tensor) -> tuple[float, float, float, float]:
    """(calibration error, MSE, value skill, confidently wrong share) of a set of positions."""
    calibration, skill = ValueCalibrationError(), ValueSkill()
    calibration.update(value, outcome)
    skill.update(value, outcome)
    confident = value.abs() > CONFIDENT_VALUE
    wrong = confident & (value * outcome < 0)
    mse = (value.double() - outcome.double()).square().mean().item()
    return calibration.compute().item(), mse, skill.compute().item(), wrong.double().mean().item()


def _bins(value: torch.Tensor, outcome: torch.Tensor) -> list[Bin]:
    metric = ValueCalibrationError()
    metric.update(value, outcome)
    table = metric.reliability()
    columns = ("bin_low", "bin_high", "count", "mean_value", "mean_outcome")
    return [
        Bin(round(low, 6) + 0.0, round(high, 6) + 0.0, int(count), mv, mo)
        for low, high, count, mv, mo in zip(*(table[c] for c in columns))
    ]


def analyse(
    value: torch.Tensor,
    outcome: torch.Tensor,
    turn: torch.Tensor,
    phase_turns: int = PHASE_TURNS,
    search_value: torch.Tensor | None = None,
) -> CalibrationReport:
    """The report of values v [N] against outcomes z [N] (both side to move's view) at
    positions `turn` [N] (completed turns), phases `phase_turns` turns wide; with
    `search_value` [N] (the search's root values q), q's figures beside v's."""
    if value.numel() == 0:
        raise CalibrationInputError("there are no positions to analyse")
    if phase_turns < 1:
        raise CalibrationInputError(f"a game phase must be at least one turn wide, got {phase_turns}")
    value, outcome = value.double(), outcome.double()
    search = None if search_value is None else search_value.double()
    calibration_error, mse, skill, wrong = _core(value, outcome)
    bins = _bins(value, outcome)

    probability, observed = (1 + value) / 2, (1 + outcome) / 2
    brier = (probability - observed).square().mean().item()
    mean_observed = observed.mean().item()
    uncertainty = observed.square().mean().item() - mean_observed**2
    n = value.numel()
    used = [b for b in bins if b.count]
    reliability = sum(b.count * ((b.mean_value - b.mean_outcome) / 2) ** 2 for b in used) / n
    resolution = sum(b.count * ((1 + b.mean_outcome) / 2 - mean_observed) ** 2 for b in used) / n

    phases = []
    bucket = turn.long() // phase_turns
    for index in bucket.unique().tolist():
        where = bucket == index
        first = index * phase_turns
        phase_search_skill = None if search is None else _core(search[where], outcome[where])[2]
        phases.append(
            Phase(first, first + phase_turns - 1, int(where.sum()), *_core(value[where], outcome[where]), phase_search_skill)
        )
    searched = {}
    if search is not None:
        search_calibration, _, search_skill, _ = _core(search, outcome)
        searched = dict(
            search_calibration_error=search_calibration,
            search_value_skill=search_skill,
            search_bins=_bins(search, outcome),
        )
    return CalibrationReport(
        positions=n,
        calibration_error=calibration_error,
        brier=brier,
        value_mse=mse,
        value_skill=skill,
        brier_reliability=reliability,
        brier_resolution=resolution,
        brier_uncertainty=uncertainty,
        brier_within_bin=brier - (reliability - resolution + uncertainty),
        confident_share=(value.abs() > CONFIDENT_VALUE).double().mean().item(),
        confidently_wrong=wrong,
        bins=bins,
        phases=phases,
        **searched,
    )


def _cell(number: float | None, digits: int = 3) -> str:
    return "-" if number is None or math.isnan(number) else f"{number:.{digits}f}"


def format_report(report: CalibrationReport) -> str:
    """The report as text tables."""
    lines = [
        f"calibration error {_cell(report.calibration_error)}   value skill {_cell(report.value_skill)}   "
        f"value MSE {_cell(report.value_mse)}   Brier {_cell(report.brier)}",
        f"Brier = reliability {_cell(report.brier_reliability, 4)} - resolution {_cell(report.brier_resolution, 4)} "
        f"+ uncertainty {_cell(report.brier_uncertainty, 4)} + within-bin {_cell(report.brier_within_bin, 4)}",
        f"confident (|v| > {CONFIDENT_VALUE}): {report.confident_share:.1%} of positions; "
        f"confidently wrong (the loser's sign): {report.confidently_wrong:.1%}",
        _search_line(report),
        "",
        f"{'value bin':>14} {'count':>7} {'mean v':>8} {'mean z':>8}",
    ]
    for b in report.bins:
        lines.append(f"[{b.low:+.1f}, {b.high:+.1f}) {b.count:>7} {_cell(b.mean_value):>8} {_cell(b.mean_outcome):>8}")
    lines += ["", f"{'turns':>9} {'count':>7} {'calib':>7} {'MSE':>7} {'skill':>7} {'conf.wrong':>10} {'q skill':>8}"]
    for p in report.phases:
        lines.append(
            f"{p.first_turn:>4}-{p.last_turn:<4} {p.count:>7} {_cell(p.calibration_error):>7} {_cell(p.value_mse):>7} "
            f"{_cell(p.value_skill):>7} {p.confidently_wrong:>10.1%} {_cell(p.search_value_skill):>8}"
        )
    return "\n".join(lines)


def _search_line(report: CalibrationReport) -> str:
    if report.search_value_skill is None:
        return "the search's root value q: not recorded with these positions"
    return (
        f"the search's root value q on the same positions: calibration error "
        f"{_cell(report.search_calibration_error)}   skill {_cell(report.search_value_skill)}"
    )


def reliability_diagram(report: CalibrationReport, path: str | os.PathLike, title: str) -> Path:
    """A PNG: mean outcome against mean value per bin (the diagonal is perfect calibration),
    over the number of positions per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    used = [b for b in report.bins if b.count]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=(3, 1), sharex=True)
    top.plot([-1, 1], [-1, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    top.plot([b.mean_value for b in used], [b.mean_outcome for b in used], marker="o", label="value head v")
    if report.search_bins is not None:
        searched = [b for b in report.search_bins if b.count]
        top.plot(
            [b.mean_value for b in searched],
            [b.mean_outcome for b in searched],
            marker="s",
            linestyle=":",
            color="tab:green",
            label=f"search root value q (skill {_cell(report.search_value_skill)})",
        )
    top.set_ylabel("mean outcome z")
    top.set_ylim(-1.05, 1.05)
    top.legend(loc="upper left")
    top.set_title(
        f"{textwrap.fill(title, 80)}\ncalibration error {_cell(report.calibration_error)}, "
        f"value skill {_cell(report.value_skill)}, {report.positions} positions",
        fontsize=8,
    )
    centres = [(b.low + b.high) / 2 for b in report.bins]
    bottom.bar(centres, [b.count for b in report.bins], width=0.18, color="tab:grey")
    bottom.set_xlabel("network value v (bins of 0.2)")
    bottom.set_ylabel("positions")
    bottom.set_xlim(-1.05, 1.05)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
