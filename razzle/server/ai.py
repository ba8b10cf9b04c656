"""The AI the play page plays against: anything that, given a position and a search
budget, returns the atomic actions of its whole turn (e.g. ["b8-c6"] or
["d8-e8", "e8-e4", "end"])."""

from __future__ import annotations

from typing import Protocol

from razzle.game.position import Position
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import load_model_file
from razzle.search import SearchConfig, UniformEvaluator
from razzle.search.agent import SearchAgent


class AIPlayer(Protocol):
    def __call__(self, position: Position, simulations: int) -> list[str]: ...


def default_player(model_path: str | None) -> AIPlayer:
    """The AI of `razzle serve`: MCTS guided by the model file at `model_path`, or by a
    uniform prior when there is none yet. A bad model file raises ModelFileError here,
    when the game starts, not in the middle of it."""
    evaluator = UniformEvaluator() if model_path is None else NetworkEvaluator(load_model_file(model_path)[0])

    def play_turn(position: Position, simulations: int) -> list[str]:
        agent = SearchAgent(evaluator, SearchConfig(simulations=simulations))
        _, thoughts = agent.play_turn(position)
        return [thought.action for thought in thoughts]

    return play_turn
