"""`razzle calibration`: how well a model's value predicts outcomes on unseen positions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from razzle.analysis.calibration import (
    PHASE_TURNS,
    CalibrationInputError,
    analyse,
    format_report,
    fresh_samples,
    predict_values,
    reliability_diagram,
    replay_samples,
    trained_shards,
)
from razzle.cli.arguments import torch_device
from razzle.game.rules import Rules
from razzle.model.io import ModelFileError, load_model_file
from razzle.search import SearchConfig

DEFAULT_GAMES = 64


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibration", help="value calibration of a model on fresh self-play games or an unseen replay folder"
    )
    parser.add_argument("model", help="model file (iter_NNNN.pt)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--games", type=int, help=f"play this many fresh self-play games (default {DEFAULT_GAMES})")
    source.add_argument("--replay", help="read the positions of a replay folder the model has not trained on instead")
    parser.add_argument("--simulations", type=int, default=64, help="MCTS simulations per move of the fresh games")
    parser.add_argument("--out", help="folder for reliability.png and calibration.json (default: beside the model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh games")
    parser.add_argument("--phase-turns", type=int, default=PHASE_TURNS, help="width of a game-phase bucket in turns")
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device for the network (cpu, cuda)")
    parser.set_defaults(func=run)


def fail(message: str) -> SystemExit:
    return SystemExit(f"razzle calibration: {message}")


def run(args) -> int:
    games = DEFAULT_GAMES if args.games is None else args.games
    if games < 1:
        raise fail("--games must be at least 1")
    if args.phase_turns < 1:
        raise fail("--phase-turns must be at least 1")
    try:
        search = SearchConfig(simulations=args.simulations)
        network, metadata = load_model_file(args.model)
        if args.replay:
            samples, shards, searched = replay_samples(args.replay)
            source = f"replay {args.replay} ({len(shards)} shard{'' if len(shards) == 1 else 's'})"
            seen = trained_shards(args.model, shards)
            if seen:
                print(
                    f"razzle calibration: warning: the model has trained on {len(seen)} of these shards "
                    f"({seen[0].parent.name}...): the figures are not held out",
                    file=sys.stderr,
                )
        else:
            rules = Rules(**metadata["rules"]) if isinstance(metadata.get("rules"), dict) else Rules()
            samples = fresh_samples(network, rules, games, search, args.seed, args.device)
            searched = True  # the games just played recorded their search values
            source = f"{games} fresh self-play games ({args.simulations} simulations, seed {args.seed})"
        values = predict_values(network, samples.planes, args.device)
        search_values = samples.search_value if searched else None
        report = analyse(values, samples.value, samples.turn, args.phase_turns, search_values)
    except (ValueError, ModelFileError, CalibrationInputError) as error:
        raise fail(str(error)) from None

    model = Path(args.model)
    out = Path(args.out) if args.out else model.parent / f"{model.stem}-calibration"
    diagram = reliability_diagram(report, out / "reliability.png", f"{model.name}: {source}")
    summary = {"model": str(model), "source": source, **report.to_dict(), "diagram": str(diagram)}
    (out / "calibration.json").write_text(json.dumps(summary, indent=1))
    print(f"{model}: {report.positions} positions from {source}")
    print(format_report(report))
    print(f"reliability diagram: {diagram}")
    print(json.dumps(summary))
    return 0
