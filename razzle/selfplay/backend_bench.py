"""`razzle bench actors`: self-play games/s here and on 1, 2, ... Ray actors, side by side.

Every configuration plays the same `--games` games per iteration with the same network:
the local backend as one lockstep batch, N actors as N shards on a local Ray cluster of
N CPUs. One warm-up iteration (actors starting, weights arriving, and with carry-over
the pipeline of games in flight filling) is not timed; the figure is the next iteration's
games over its wall time, transfers included. `--no-carry-over` measures shards that drain.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from razzle.cli.arguments import positive_int
from razzle.game.rules import Rules
from razzle.model.network import MODEL_SIZES, RazzleNet
from razzle.search import SearchConfig
from razzle.selfplay.backend import BackendConfig, RayConfig, make_backend, plan_shards
from razzle.selfplay.games import SelfPlayConfig


def add_arguments(parser) -> None:
    parser.add_argument("--actors", type=positive_int, nargs="+", default=[1, 2], help="Ray actor counts to measure")
    parser.add_argument("--games", type=positive_int, default=16, help="games per iteration")
    parser.add_argument("--simulations", type=positive_int, default=16)
    parser.add_argument("--max-turns", type=positive_int, default=60)
    parser.add_argument("--model", choices=MODEL_SIZES, default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--carry-over",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="shards keep their unfinished games for the next iteration, as the loop does by default",
    )


def _games_per_s(config: BackendConfig, network, search, games: SelfPlayConfig, rules, seed: int) -> float:
    backend = make_backend(config, search, games, rules, seed, progress=False)
    try:
        count, stream = config.shard_count(), config.keeps_sessions
        backend.play(network, 0, plan_shards(games.games, count, seed, 0, stream), None)  # warm-up
        started = time.perf_counter()
        backend.play(network, 1, plan_shards(games.games, count, seed, 1, stream), None)
        return games.games / (time.perf_counter() - started)
    finally:
        backend.close()


def run(args) -> dict:
    torch.manual_seed(args.seed)
    network = RazzleNet.of_size(args.model)
    search, rules = SearchConfig(simulations=args.simulations), Rules(max_turns=args.max_turns)
    games = SelfPlayConfig(games=args.games, parallel=args.games)
    figures: dict = {
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "games": args.games,
        "simulations": args.simulations,
        "model": args.model,
        "carry_over": args.carry_over,
    }
    local = _games_per_s(BackendConfig(carry_over=args.carry_over), network, search, games, rules, args.seed)
    figures["local_games_per_s"] = round(local, 3)
    print(f"local backend: {local:.3f} games/s")
    for actors in args.actors:
        config = BackendConfig(
            backend="ray", actors=actors, carry_over=args.carry_over, ray=RayConfig(num_cpus=actors)
        )
        rate = _games_per_s(config, network, search, games, rules, args.seed)
        figures[f"ray_{actors}_actors_games_per_s"] = round(rate, 3)
        print(f"{actors} Ray actor(s): {rate:.3f} games/s")
    return figures
