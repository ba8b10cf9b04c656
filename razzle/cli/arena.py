"""`razzle arena`: a model with search against a baseline or another model."""

from __future__ import annotations

from razzle.cli.arguments import nonnegative_int, positive_int
from razzle.cli.common import DefaultsHelpFormatter, add_search_arguments, load_evaluator, search_config
from razzle.game import Rules
from razzle.search import MCTSPlayer, RandomPlayer, UniformEvaluator, play_match
from razzle.search.player import OPENING_TURNS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "arena",
        help="play a model against random, uniform-prior MCTS or another model",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model file (iter_NNNN.pt)")
    parser.add_argument(
        "--opponent", default="random", help="random | mcts (uniform prior, same simulations) | FILE.pt"
    )
    parser.add_argument("--games", type=positive_int, default=50, help="games, colours alternated")
    parser.add_argument("--seed", type=int, default=0, help="seed of both players' tie-breaks and random moves")
    parser.add_argument(
        "--opening-turns", type=nonnegative_int, default=OPENING_TURNS,
        help="turns whose move each searching side samples in proportion to visits, so that the games differ",
    )
    parser.add_argument("--max-turns", type=int, default=Rules.max_turns, help="turn limit of each game (a draw)")
    add_search_arguments(parser, simulations=64)
    parser.set_defaults(func=run)


def run(args) -> int:
    config = search_config(args)

    def searcher(evaluator, seed: int) -> MCTSPlayer:
        return MCTSPlayer(evaluator, config, seed=seed, opening_turns=args.opening_turns)

    player = searcher(load_evaluator(args.model, args.device, "razzle arena"), args.seed)
    if args.opponent == "random":
        opponent = RandomPlayer(seed=args.seed + 1)
    elif args.opponent == "mcts":
        opponent = searcher(UniformEvaluator(), args.seed + 1)
    else:
        opponent = searcher(load_evaluator(args.opponent, args.device, "razzle arena"), args.seed + 1)
    result = play_match(player, opponent, args.games, Rules(max_turns=args.max_turns), progress=True)
    low, high = result.score_interval()
    print(f"{args.model} vs {args.opponent}: {result.wins} wins, {result.draws} draws, {result.losses} losses "
          f"in {result.games} games")
    print(f"score {result.score:.3f} (95% CI {low:.3f}-{high:.3f}); win rate {result.wins / result.games:.3f}")
    return 0
