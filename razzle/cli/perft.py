"""`razzle perft DEPTH [--turns]`: legal sequence counts from the initial position."""

from __future__ import annotations

import time

from razzle.cli.arguments import torch_device
from razzle.game.perft import perft


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("perft", help="count legal action sequences from the start")
    parser.add_argument("depth", type=int, help="number of atomic actions (or turns with --turns)")
    parser.add_argument("--turns", action="store_true", help="count whole turns (a pass chain is one turn)")
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device (cpu, cuda)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.depth < 1:
        raise SystemExit("razzle perft: DEPTH must be at least 1")
    started = time.perf_counter()
    unit = "turn" if args.turns else "atomic"
    for depth, count in enumerate(perft(args.depth, turns=args.turns, device=args.device), 1):
        print(f"depth {depth}  {unit} sequences {count:,}")
    print(f"({time.perf_counter() - started:.2f} s)")
    return 0
