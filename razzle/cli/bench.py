"""`razzle bench TARGET`: throughput benchmarks, each ending with one JSON line of figures."""

from __future__ import annotations

import importlib
import json

from razzle.memory import memory_allocator

# target -> module with add_arguments(parser) and run(args) -> dict
TARGETS = {
    "engine": "razzle.game.bench",
    "search": "razzle.search.bench",
    "train": "razzle.train.bench",
    "selfplay": "razzle.selfplay.bench",
    "actors": "razzle.selfplay.backend_bench",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput (prints a JSON line at the end)")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, module_name in TARGETS.items():
        module = importlib.import_module(module_name)
        target = targets.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(target)
        target.set_defaults(func=lambda args, module=module: _run(args, module))


def _run(args, module) -> int:
    figures = module.run(args)
    print(json.dumps({"bench": args.target, "allocator": memory_allocator(), **figures}))
    return 0
