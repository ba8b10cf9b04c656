"""`razzle ladder`: Elo ratings of every model of a finished run, from games between them."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path

from razzle.cli.arguments import torch_device
from razzle.search.ladder import (
    ANCHORS,
    Ladder,
    LadderError,
    Rating,
    default_opponents,
    rate_new_model,
)

DEFAULT_GAMES = 20
_MODEL_FILE = re.compile(r"^iter_(\d{4,})\.pt$")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("ladder", help="Elo ratings of a run's models over iterations (ladder.json, elo.png)")
    parser.add_argument("run", help="run folder with models/iter_NNNN.pt")
    parser.add_argument("--games", type=int, default=DEFAULT_GAMES, help="games per pair of models, colours alternated")
    parser.add_argument("--simulations", type=int, help="MCTS simulations per move (default: the ladder's, else 32)")
    parser.add_argument("--c-puct", type=float, help="PUCT exploration weight (default: the ladder's, else 1.5)")
    parser.add_argument("--anchor", choices=ANCHORS, help="rated 0: the random player or the first model (default random)")
    parser.add_argument("--out", help="folder for ladder.json and elo.png (default: the run folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device for the networks (cpu, cuda)")
    parser.set_defaults(func=run)


def fail(message: str) -> SystemExit:
    return SystemExit(f"razzle ladder: {message}")


def run_models(run: Path) -> list[tuple[int, Path]]:
    """(iteration, file) of every models/iter_NNNN.pt, in iteration order."""
    if not run.is_dir():
        raise fail(f"{run} is not a folder")
    found = [(int(m.group(1)), path) for path in (run / "models").glob("iter_*.pt") if (m := _MODEL_FILE.match(path.name))]
    if not found:
        raise fail(f"{run} has no models (expected {run / 'models' / 'iter_NNNN.pt'})")
    return sorted(found)


def format_table(ratings: list[Rating], anchor: str) -> str:
    lines = [f"{'iteration':>9}  {'elo':>7}  {'95% interval':>17}  {'games':>6}"]
    for rating in ratings:
        label = "random" if rating.iteration is None else str(rating.iteration)
        if rating.name == anchor:
            interval = "anchor"
        elif math.isfinite(rating.elo):
            interval = f"{rating.low:7.0f} to {rating.high:<7.0f}"
        else:
            interval = "no games"
        elo = f"{rating.elo:7.0f}" if math.isfinite(rating.elo) else "-"
        lines.append(f"{label:>9}  {elo:>7}  {interval:>17}  {rating.games:>6}")
    return "\n".join(lines)


def run(args) -> int:
    if args.games < 1:
        raise fail("--games must be at least 1")
    run_dir = Path(args.run)
    models = run_models(run_dir)
    out = Path(args.out) if args.out else run_dir
    try:
        ladder = Ladder.open(out / "ladder.json", args.anchor, args.simulations, args.c_puct)
        played_before = sum(r.games for r in ladder.results.values())
        for iteration, path in models:
            name = ladder.add_model(path, iteration).name
            missing = [o for o in default_opponents(ladder, iteration) if ladder.between(name, o).games < args.games]
            if missing:
                print(f"{name} against {', '.join(missing)}", file=sys.stderr)
            rate_new_model(ladder, path, iteration, args.games, device=args.device, seed=args.seed, progress=True)
    except LadderError as error:
        raise fail(str(error)) from None
    ratings = ladder.ratings()
    played = sum(r.games for r in ladder.results.values()) - played_before
    settings = f"{ladder.simulations} simulations, c_puct {ladder.c_puct}, anchor {ladder.anchor}"
    plot = plot_ladder(ratings, out / "elo.png", f"{run_dir.name}: Elo over iterations ({settings})")
    print(f"{run_dir}: {len(models)} models, {played} games played now ({settings})")
    print(format_table(ratings, ladder.anchor_name()))
    print(f"ladder: {ladder.path}")
    print(f"plot: {plot}")
    return 0


def plot_ladder(ratings: list[Rating], path: str | os.PathLike, title: str) -> Path:
    """Elo over iterations with the 95% intervals as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rated = [r for r in ratings if r.iteration is not None and math.isfinite(r.elo)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4))
    x = [r.iteration for r in rated]
    axes.fill_between(x, [r.low for r in rated], [r.high for r in rated], alpha=0.25, label="95% interval")
    axes.plot(x, [r.elo for r in rated], marker="o", label="Elo")
    axes.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.set_xlabel("iteration")
    axes.set_ylabel("Elo (anchor = 0)")
    axes.set_title(title, fontsize=10)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
