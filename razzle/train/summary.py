"""The end of a run: a table of its iterations and a picture of its learning curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from razzle.train.report import IterationReport  # noqa: E402

COLUMNS = (
    ("iteration", "iter", "{:.0f}"),
    ("loss_total", "loss", "{:.3f}"),
    ("policy_top1_accuracy", "top1", "{:.3f}"),
    ("legal_mass", "legal", "{:.3f}"),
    ("value_calibration_error", "calib", "{:.3f}"),
    ("game_length_mean", "turns", "{:.1f}"),
    ("eval_random_win_rate", "vs random", "{:.2f}"),
    ("eval_mcts_win_rate", "vs mcts", "{:.2f}"),
    ("elo", "elo", "{:.0f}"),
)
PANELS = (
    ("Win rate of the network with search", ("eval_random_win_rate", "eval_mcts_win_rate")),
    ("Held-out loss on fresh games", ("loss_total", "policy_loss", "value_loss", "value_loss_quartic")),
    ("Policy", ("policy_top1_accuracy", "legal_mass")),
    ("Value calibration", ("value_calibration_error", "value_extremity", "value_skill", "search_value_skill")),
    ("Elo on the run's ladder (random play = 0)", ("elo",)),
    ("Seconds per iteration", ("iteration_seconds", "selfplay_seconds", "training_seconds", "evaluation_seconds")),
)


class RunSummary:
    """A handler of the training loop: at the end of the run (including iterations
    finished before a resume) prints the table and writes `curves.png` in `run_dir`."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.history: list[dict[str, float]] = []

    def on_run_start(self, previous: Sequence[IterationReport]) -> None:
        self.history = [_row(report) for report in previous]

    def on_iteration(self, report: IterationReport) -> None:
        self.history.append(_row(report))

    def on_run_end(self) -> None:
        print(summarize(self.history, self.run_dir), flush=True)


def _row(report: IterationReport) -> dict[str, float]:
    return {"iteration": float(report.iteration), **report.metrics()}


def summarize(history: list[dict[str, float]], run_dir: Path) -> str:
    """The table (returned for printing) and `curves.png` in the run folder."""
    if not history:
        return "no iteration finished"
    header = "  ".join(f"{title:>9}" for _, title, _ in COLUMNS)
    rows = [header]
    for record in history:
        cells = []
        for name, _, fmt in COLUMNS:
            value = record.get(name)
            cells.append(f"{fmt.format(value):>9}" if value is not None and not math.isnan(value) else f"{'-':>9}")
        rows.append("  ".join(cells))
    picture = plot_curves(history, run_dir / "curves.png")
    return "\n".join(rows) + f"\n\nlearning curves: {picture}\nmodels: {run_dir / 'models'}"


def plot_curves(history: list[dict[str, float]], path: Path) -> Path:
    figure, axes = plt.subplots(3, 2, figsize=(11, 10), constrained_layout=True)
    for axis, (title, names) in zip(axes.flat, PANELS):
        for name in names:
            points = [(r["iteration"], r[name]) for r in history if name in r and not math.isnan(r[name])]
            if points:
                axis.plot(*zip(*points), marker="o", label=name)
            band = [(r["iteration"], r[f"{name}_low"], r[f"{name}_high"]) for r in history if f"{name}_low" in r]
            band = [row for row in band if not any(math.isnan(v) for v in row)]
            if band:  # a metric with a 95% interval (elo_low, elo_high)
                axis.fill_between(*zip(*band), alpha=0.25, label="95% interval")
        axis.set_title(title)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
