"""The `razzle` command: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

from razzle.memory import keep_freed_memory

# Each module defines `add_parser(subparsers)`; the parser it adds sets `func(args) -> int`.
COMMANDS = ["perft", "bench", "play", "arena", "serve", "calibration", "compare", "ladder"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="razzle", description="Razzle Dazzle self-play training tools")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"razzle.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
