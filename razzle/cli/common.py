"""Pieces the commands share: loading an evaluator and the search settings they accept."""

from __future__ import annotations

import argparse

from razzle.cli.arguments import torch_device
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import ModelFileError, load_model_file
from razzle.search import SearchConfig, UniformEvaluator
from razzle.search.evaluator import Evaluator


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """`--help` shows each option's default, except where there is none (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = not any(action.default is none for none in (None, False, argparse.SUPPRESS))
        if shown and action.option_strings and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def add_search_arguments(parser: argparse.ArgumentParser, simulations: int = 200) -> None:
    parser.add_argument("--simulations", type=int, default=simulations, help="MCTS simulations per move")
    parser.add_argument("--c-puct", type=float, default=SearchConfig.c_puct, help="PUCT exploration weight")
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device for the network (cpu, cuda)")


def search_config(args: argparse.Namespace) -> SearchConfig:
    try:
        return SearchConfig(simulations=args.simulations, c_puct=args.c_puct)
    except ValueError as error:
        raise SystemExit(f"razzle {args.command}: {error}") from None


def load_evaluator(model: str | None, device: str = "cpu", command: str = "razzle") -> Evaluator:
    """The network of a model file, or a uniform prior (pure MCTS) without one."""
    if model is None:
        return UniformEvaluator()
    try:
        network, _ = load_model_file(model, map_location=device)
    except ModelFileError as error:
        raise SystemExit(f"{command}: {error}") from None
    return NetworkEvaluator(network, device)
