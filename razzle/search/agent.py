"""A searching player for single games: the terminal, the web page and AI-vs-AI watching.

It searches one `Position` at a time with the batched MCTS (a batch of one) and reports
what it thought, so a UI can show the top moves with their visits and values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from razzle.game.position import Position
from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator, UniformEvaluator
from razzle.search.mcts import MCTS
from razzle.search.player import choose_actions
from razzle.search.streams import draw_seeds


@dataclass(frozen=True)
class Candidate:
    action: str
    visits: int
    value: float  # mean value after this action, from the mover's view
    prior: float


@dataclass(frozen=True)
class Thought:
    """One decision: the chosen action and the search's view of the position."""

    action: str
    value: float  # root value from the side to move's view
    candidates: tuple[Candidate, ...]  # most visited first; the chosen one first among equals


class SearchAgent:
    def __init__(self, evaluator: Evaluator | None = None, config: SearchConfig | None = None, seed: int = 0):
        self.config = config or SearchConfig()
        self.mcts = MCTS(evaluator or UniformEvaluator(), self.config)
        self.generator = torch.Generator().manual_seed(seed)

    def think(self, position: Position) -> Thought:
        if position.is_terminal:
            raise ValueError("the game is over; there is nothing to search")
        seeds = draw_seeds(1, self.generator, position.state.device)
        result = self.mcts.search(position.state, seeds).to("cpu")
        chosen = int(choose_actions(result, 0.0, self.generator)[0])
        candidates = [
            Candidate(position.action_text(action), int(visits), q, prior)
            for action, visits, q, prior, legal in zip(
                result.actions[0].tolist(),
                result.visits[0].tolist(),
                result.q[0].tolist(),
                result.prior[0].tolist(),
                result.legal[0].tolist(),
            )
            if legal
        ]
        action = position.action_text(chosen)
        candidates.sort(key=lambda c: (-c.visits, c.action != action, -c.prior))
        return Thought(action, float(result.root_value[0]), tuple(candidates))

    def play_turn(self, position: Position) -> tuple[Position, list[Thought]]:
        """Search and play atomic actions until the turn passes to the opponent or the game ends."""
        mover, thoughts = position.to_move, []
        while not position.is_terminal and position.to_move == mover:
            thought = self.think(position)
            thoughts.append(thought)
            position = position.play(thought.action)
        return position, thoughts
