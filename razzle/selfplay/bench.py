"""`razzle bench selfplay`: self-play games/s, how much of self-play is the network, and raw
search speed.

games/s: the configuration of the README's throughput figures (tiny network, 64
simulations, 64 games in a batch of 64; the training default plays 128), played as one
self-contained batch (`play_games`: the batch drains at the end, as every iteration did
before sessions) and as the training loop plays it now (a `SelfPlaySession` in steady
state: unfinished games carry over, the batch stays full).
search overhead = self-play network evaluations/s / the bare network's forward
positions/s at the same batch (1.0: the search costs nothing beside the network), the two
measured in alternating rounds; beside it, the share of the search's wall time spent
inside the network call, measured in the same searches.
Raw search speed uses a uniform evaluator, so it measures the tree and the rules alone.
"""

from __future__ import annotations

import time

import torch

from razzle.cli.arguments import nonnegative_int, positive_float, positive_int, torch_device
from razzle.game.bench import midgame_positions
from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.network import MODEL_SIZES, RazzleNet
from razzle.search import SearchConfig, UniformEvaluator
from razzle.search.bench import fresh_compilation, search_throughput, warn_if_compiled
from razzle.selfplay.games import SelfPlayConfig, SelfPlaySession, play_games

OVERHEAD_ROUNDS = 3  # alternations of bare network and search in the overhead figure


def add_arguments(parser) -> None:
    parser.add_argument(
        "--models", nargs="+", choices=MODEL_SIZES, default=["tiny", "medium"], help="network sizes"
    )
    parser.add_argument("--batch", type=positive_int, default=64, help="games searched in lockstep")
    parser.add_argument("--simulations", type=positive_int, default=64)
    parser.add_argument(
        "--raw-batch-sizes",
        type=positive_int,
        nargs="*",
        default=[256, 1024],
        help="uniform-evaluator batches (none: skip)",
    )
    parser.add_argument("--seconds", type=positive_float, default=5.0, help="measuring time per figure")
    parser.add_argument("--device", type=torch_device, default="cpu")
    parser.add_argument(
        "--compile", action="store_true", help="fixed-shape simulations under torch.compile (search.compile)"
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="simulations replayed as CUDA graphs (search.cuda_graphs)"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for the network")
    parser.add_argument(
        "--games",
        type=nonnegative_int,
        default=64,
        help="games of the games/s figure (0: skip it; it takes minutes on a CPU)",
    )
    parser.add_argument("--games-model", choices=MODEL_SIZES, default="tiny", help="network size of the games/s figure")
    parser.add_argument("--max-turns", type=positive_int, default=Rules().max_turns, help="rules of the games/s figure")


def forward_positions_per_s(evaluator: NetworkEvaluator, positions, seconds: float) -> float:
    evaluator(positions)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        evaluator(positions)
        calls += 1
    if positions.device.type == "cuda":
        torch.cuda.synchronize()
    return calls * positions.batch_size / (time.perf_counter() - started)


def search_overhead(evaluator: NetworkEvaluator, positions, config: SearchConfig, seconds: float) -> dict:
    """The bare network's positions/s and the search's evaluations/s at the same batch,
    measured in alternating rounds: on a shared machine the speed drifts by 20-30% within a
    minute, and measuring one after the other put that drift into the ratio."""
    bare, searched, shares = [], [], []
    for round_ in range(OVERHEAD_ROUNDS):
        bare.append(forward_positions_per_s(evaluator, positions, seconds / OVERHEAD_ROUNDS))
        measured = search_throughput(evaluator, positions, config, seconds / OVERHEAD_ROUNDS, warm_up=round_ == 0)
        warn_if_compiled(measured, f"search overhead, round {round_ + 1}")
        searched.append(measured["evaluations_per_s"])
        shares.append(measured["evaluator_share"])
    bare_rate, search_rate = sum(bare) / len(bare), sum(searched) / len(searched)
    return {
        "network_positions_per_s": bare_rate,
        "selfplay_evals_per_s": search_rate,
        "search_overhead": search_rate / bare_rate,
        "evaluator_share": None if None in shares else sum(shares) / len(shares),
    }


def games_per_s(evaluator, search: SearchConfig, games: int, rules: Rules, device: torch.device) -> dict:
    """games/s of one self-contained batch of `games` (it drains at the end) and of a
    session's second call of `games` (its first fills the pipeline of carried-over games)."""
    config = SelfPlayConfig(games=games, parallel=games)
    fresh_compilation(search)
    alone = play_games(evaluator, search, config, rules, device, seed=0, progress=False)
    fresh_compilation(search)
    session = SelfPlaySession(search, config, rules, device, seed=1)
    session.play(evaluator, games, progress=False)
    steady = session.play(evaluator, games, progress=False)
    return {
        "games_per_s_batch": alone.stats["selfplay_games_per_s"],
        "games_per_s_session": steady.stats["selfplay_games_per_s"],
        "evals_per_s_batch": alone.stats["selfplay_evals_per_s"],
        "evals_per_s_session": steady.stats["selfplay_evals_per_s"],
    }


def run(args) -> dict:
    device = torch.device(args.device)
    config = SearchConfig(simulations=args.simulations, compile=args.compile, cuda_graphs=args.cuda_graphs)
    positions = midgame_positions(args.batch, device, seed=2)
    figures: dict = {"threads": torch.get_num_threads(), "batch": args.batch, "simulations": args.simulations}
    if args.games:
        torch.manual_seed(0)
        evaluator = NetworkEvaluator(RazzleNet.of_size(args.games_model), device, bf16=args.bf16)
        measured = games_per_s(evaluator, config, args.games, Rules(max_turns=args.max_turns), device)
        figures.update({f"{args.games_model}_{name}": round(value, 4) for name, value in measured.items()})
        gain = measured["games_per_s_session"] / measured["games_per_s_batch"]
        figures["session_vs_batch_games_per_s"] = round(gain, 3)
        print(
            f"self-play, {args.games_model}, {args.simulations} simulations, {args.games} games: "
            f"{measured['games_per_s_batch']:.3f} games/s as one draining batch, "
            f"{measured['games_per_s_session']:.3f} games/s in a session ({gain:.2f}x)"
        )
    for size in args.models:
        evaluator = NetworkEvaluator(RazzleNet.of_size(size), device, bf16=args.bf16)
        fresh_compilation(config)
        measured = search_overhead(evaluator, positions, config, args.seconds)
        figures[f"{size}_network_positions_per_s"] = round(measured["network_positions_per_s"])
        figures[f"{size}_selfplay_evals_per_s"] = round(measured["selfplay_evals_per_s"])
        figures[f"{size}_search_overhead"] = round(measured["search_overhead"], 3)
        share = measured["evaluator_share"]
        figures[f"{size}_evaluator_share"] = None if share is None else round(share, 3)
        print(
            f"{size:>6}: bare network {measured['network_positions_per_s']:9,.0f} positions/s, in search "
            f"{measured['selfplay_evals_per_s']:9,.0f} evaluations/s at batch {args.batch} -> search overhead "
            f"ratio {measured['search_overhead']:.2f} (the network's share of the search's time "
            f"{'inside the CUDA graphs' if share is None else f'{share:.2f}'})"
        )
    for batch in args.raw_batch_sizes:
        fresh_compilation(config)
        raw = search_throughput(UniformEvaluator(), midgame_positions(batch, device, seed=3), config, args.seconds)
        figures[f"uniform_sims_per_s_b{batch}"] = raw["sims_per_s"]
        print(f"uniform evaluator, batch {batch:>5}: {raw['sims_per_s']:>9,} simulations/s")
        warn_if_compiled(raw, f"uniform evaluator, batch {batch}")
    return figures
