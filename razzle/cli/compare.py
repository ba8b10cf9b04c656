"""`razzle compare`: training runs grouped into arms and compared across seeds."""

from __future__ import annotations

from pathlib import Path

from razzle.analysis.compare import TOP1_TARGET, CompareError, compare, head_to_head
from razzle.analysis.compare_report import write_report
from razzle.cli.arguments import nonnegative_int, torch_device


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare training runs (a multirun folder or run folders) across seeds: Markdown + plots"
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="a multirun folder, or run folders")
    parser.add_argument("--out", help="report folder (default: DIR/compare for one DIR, else outputs/compare)")
    parser.add_argument(
        "--by", nargs="+", metavar="KEY", help="config keys that define the arms (default: those that differ)"
    )
    parser.add_argument("--top1-threshold", type=float, default=TOP1_TARGET, help="policy top-1 for the learning speed")
    parser.add_argument(
        "--arena-games", type=nonnegative_int, default=0, help="games per seed pair between final models (0: none)"
    )
    parser.add_argument("--simulations", type=int, default=64, help="MCTS simulations per move in the arena")
    parser.add_argument("--seed", type=int, default=0, help="seed of the arena's searches")
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device for the arena (cpu, cuda)")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        comparison = compare(args.dirs, args.by, args.top1_threshold)
        duels = []
        if args.arena_games:
            duels = head_to_head(comparison, args.arena_games, args.simulations, args.seed, args.device, progress=True)
    except (CompareError, ValueError) as error:
        raise SystemExit(f"razzle compare: {error}") from None
    if args.out:
        out = Path(args.out)
    else:
        out = Path(args.dirs[0]) / "compare" if len(args.dirs) == 1 else Path("outputs/compare")
    report = write_report(comparison, out, duels)
    reference = comparison.reference.label
    print(f"{len(comparison.arms)} arm(s): " + "; ".join(f"{a.label} ({len(a.runs)} seeds)" for a in comparison.arms))
    third = comparison.last_third
    for arm in comparison.arms[1:]:
        for metric in comparison.metrics:
            gap = comparison.differences[metric][arm.label]
            mark = "  (interval excludes 0)" if gap.excludes_zero else ""
            print(f"{arm.label} - {reference}, {metric}, iterations {third[0]}-{third[-1]}: {gap.text()}{mark}")
    for duel in duels:
        total = duel.result
        low, high = total.score_interval()
        record = f"{total.wins}-{total.draws}-{total.losses}"
        print(f"{duel.arm} vs {reference}: {record}, score {total.score:.3f} ({low:.3f}-{high:.3f})")
    print(f"report: {report}")
    return 0
