"""Batched Monte Carlo tree search (PUCT) over many games at once."""

from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator, TimedEvaluator, UniformEvaluator
from razzle.search.match import MatchResult, play_match
from razzle.search.mcts import MCTS, SearchResult
from razzle.search.player import MCTSPlayer, RandomPlayer, choose_actions

__all__ = [
    "MCTS",
    "Evaluator",
    "MCTSPlayer",
    "MatchResult",
    "RandomPlayer",
    "SearchConfig",
    "SearchResult",
    "TimedEvaluator",
    "UniformEvaluator",
    "choose_actions",
    "play_match",
]
