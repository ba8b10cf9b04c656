"""The comparison as a Markdown report with its plots (``report.md``, ``metrics.png``,
``differences.png``), written into one folder."""

from __future__ import annotations

import math
import os
from pathlib import Path

from razzle.analysis.compare import CONFIDENCE, Comparison, HeadToHead, Interval


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "**no**")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _difference(gap: Interval) -> str:
    if math.isnan(gap.mean):
        return "-"
    text = gap.text()
    if math.isnan(gap.low):
        return f"{text} (no interval: one seed)"
    return f"**{text}**" if gap.excludes_zero else text


def markdown(comparison: Comparison, duels: list[HeadToHead], plots: list[str]) -> str:
    arms, reference = comparison.arms, comparison.reference
    first, last = comparison.iterations[0], comparison.iterations[-1]
    third = comparison.last_third
    lines = [
        f"# {len(arms)} arm(s), {sum(len(a.runs) for a in arms)} runs",
        "",
        f"Iterations {first}-{last}; the last third is iterations {third[0]}-{third[-1]}. Reference arm: "
        f"`{reference.label}`. Means are over seeds with {CONFIDENCE:.0%} t-intervals; a difference is the arm's "
        "mean minus the reference's, each seed first averaged over the last third, with a Welch t-interval "
        "over seeds (in bold where it excludes zero).",
        "",
        *[f"Note: {note}.\n" for note in comparison.notes],
        "## Runs",
        "",
        *_table(
            ["arm", "seeds", "runs"],
            [[f"`{a.label}`", ", ".join(a.seeds), ", ".join(str(r.path) for r in a.runs)] for a in arms],
        ),
        f"## Over the last third (iterations {third[0]}-{third[-1]})",
        "",
    ]
    header = ["metric", *[f"`{a.label}`" for a in arms], *[f"`{a.label}` - reference" for a in arms[1:]]]
    rows = [
        [
            metric,
            *[comparison.last_third_means[metric][a.label].text() for a in arms],
            *[_difference(comparison.differences[metric][a.label]) for a in arms[1:]],
        ]
        for metric in comparison.metrics
    ]
    lines += _table(header, rows)

    threshold = comparison.top1_threshold
    lines += [f"## Learning speed: first iteration with policy top-1 >= {threshold}", ""]
    rows = []
    for arm in arms:
        per_seed = comparison.speed[arm.label]
        reached = [s for s in per_seed if s is not None]
        mean = f"{sum(reached) / len(reached):.1f}" if reached else "-"
        gap = "" if arm is reference else _difference(comparison.speed_difference[arm.label])
        cells = ", ".join("never" if s is None else str(s) for s in per_seed)
        rows.append([f"`{arm.label}`", cells, f"{mean} ({len(reached)} of {len(per_seed)} seeds)", gap])
    lines += _table(["arm", "per seed", "mean", "difference to the reference"], rows)

    lines += [f"## The training plan's success criteria (means over seeds at iteration {last})", ""]
    names = list(next(iter(comparison.criteria.values())))
    rows = [[name, *[_yes_no(comparison.criteria[a.label][name]) for a in arms]] for name in names]
    lines += _table(["criterion", *[f"`{a.label}`" for a in arms]], rows)

    if duels:
        lines += ["## Head to head: final models against the reference arm's", ""]
        rows = []
        for duel in duels:
            total = duel.result
            low, high = total.score_interval()
            score = f"{total.score:.3f} [{low:.3f}, {high:.3f}]"
            rows.append([f"`{duel.arm}`", f"{total.wins}-{total.draws}-{total.losses}", score])
        lines += _table(["arm", "wins-draws-losses", "score [95% Wilson interval over the pooled games]"], rows)

    lines += ["## Per iteration", "", *[f"![{p}]({p})" for p in plots], ""]
    for metric in comparison.metrics:
        series = comparison.per_iteration[metric]
        rows = [[str(i), *[series[a.label][k].text() for a in arms]] for k, i in enumerate(comparison.iterations)]
        lines += [f"### {metric}", "", *_table(["iteration", *[f"`{a.label}`" for a in arms]], rows)]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(comparison: Comparison, path: Path) -> Path:
    """One panel per metric: each arm's mean over seeds and its 95% band, per iteration."""
    plt = _pyplot()
    columns = 2
    rows = math.ceil(len(comparison.metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(11, 3.2 * rows), squeeze=False)
    for axis, metric in zip(axes.flat, comparison.metrics):
        for arm in comparison.arms:
            series = comparison.per_iteration[metric][arm.label]
            measured = [(i, s) for i, s in zip(comparison.iterations, series) if not math.isnan(s.mean)]
            x = [i for i, _ in measured]
            line = axis.plot(x, [s.mean for _, s in measured], marker=".", label=arm.label)[0]
            low, high = [s.low for _, s in measured], [s.high for _, s in measured]
            axis.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
        axis.set_title(metric, fontsize=10)
        axis.set_xlabel("iteration")
    for axis in list(axes.flat)[len(comparison.metrics) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_differences(comparison: Comparison, path: Path) -> Path:
    """Each arm minus the reference over the last third, with its interval, per metric."""
    plt = _pyplot()
    metrics = comparison.metrics
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    height = 0.9 + 0.35 * len(comparison.arms)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, height * rows), squeeze=False)
    for index, (axis, metric) in enumerate(zip(axes.flat, metrics)):
        for row, arm in enumerate(comparison.arms[1:]):
            gap = comparison.differences[metric][arm.label]
            error = [[gap.mean - gap.low], [gap.high - gap.mean]] if not math.isnan(gap.low) else None
            axis.errorbar([gap.mean], [row], xerr=error, fmt="o", capsize=4)
        axis.axvline(0, color="grey", linewidth=1)
        labels = [a.label for a in comparison.arms[1:]] if index % columns == 0 else []
        axis.set_yticks(range(len(comparison.arms) - 1), labels, fontsize=7)
        axis.set_ylim(-0.5, len(comparison.arms) - 1.5)
        axis.set_title(metric, fontsize=8)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.set_visible(False)
    title = f"difference to {comparison.reference.label}, last third, {CONFIDENCE:.0%} Welch t-interval"
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_report(comparison: Comparison, out: str | os.PathLike, duels: list[HeadToHead] | None = None) -> Path:
    """Write report.md and its plots into `out`; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = [plot_metrics(comparison, out / "metrics.png").name]
    if len(comparison.arms) > 1:
        plots.append(plot_differences(comparison, out / "differences.png").name)
    report = out / "report.md"
    report.write_text(markdown(comparison, duels or [], plots))
    return report
