"""Turning a search into moves: the action choice, and players for matches and UIs."""

from __future__ import annotations

import torch

from razzle.game.actions import END
from razzle.game.engine import random_actions
from razzle.game.state import State
from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator
from razzle.search.mcts import MCTS, SearchResult
from razzle.search.streams import draw_seeds


def choose_actions(
    result: SearchResult,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B] action ids: the most visited root child at temperature 0 (ties broken at
    random), else a sample with probability proportional to visits ** (1 / temperature).
    Finished games get END, as `random_actions` gives them. The randomness is `noise`
    ([B, 49] uniforms in [0, 1)) when given, else drawn from `generator`."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    visits = result.visits
    if noise is None:
        noise = torch.rand(visits.shape, generator=generator, device=visits.device)
    if temperature == 0:
        most = visits == visits.amax(1, keepdim=True)
        slot = torch.where(most & result.legal, noise + 1, 0.0).argmax(1)
    else:
        # Gumbel-max sampling from log(visits) / T: one vectorised draw per game.
        gumbel = -torch.log(-torch.log(noise.clamp(min=1e-12)))
        logits = torch.where(visits > 0, visits.clamp(min=1).log() / temperature, float("-inf"))
        slot = (logits + gumbel).argmax(1)
    action = result.actions.gather(1, slot.unsqueeze(1)).squeeze(1)
    return torch.where(result.done, END, action)


class RandomPlayer:
    """A uniformly random legal action per game."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, state: State) -> torch.Tensor:
        return random_actions(state.to("cpu"), self.generator).to(state.device)


# Turns whose move a match player samples in proportion to visits (`opening_turns`).
OPENING_TURNS = 4


class MCTSPlayer:
    """Search every game of the batch and play the chosen action (no root noise).

    opening_turns: sample the move in proportion to visits for a game's first turns, then
    choose at `temperature`. Two deterministic searches facing each other otherwise play
    the same few games again and again (a 40-game match between two trained models held
    5 distinct games), and a match's interval counts games as independent."""

    def __init__(
        self,
        evaluator: Evaluator,
        config: SearchConfig | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        opening_turns: int = 0,
    ):
        if opening_turns < 0:
            raise ValueError(f"opening_turns must be >= 0, got {opening_turns}")
        self.mcts = MCTS(evaluator, config)
        self.temperature = temperature
        self.opening_turns = opening_turns
        self.generator = torch.Generator().manual_seed(seed)
        self.last_result: SearchResult | None = None

    def __call__(self, state: State) -> torch.Tensor:
        seeds = draw_seeds(state.batch_size, self.generator, state.device)
        self.last_result = self.mcts.search(state, seeds)
        result = self.last_result.to("cpu")
        if not self.opening_turns:
            return choose_actions(result, self.temperature, self.generator).to(state.device)
        opening = choose_actions(result, 1.0, self.generator)
        chosen = choose_actions(result, self.temperature, self.generator)
        return torch.where(state.turn.to("cpu") < self.opening_turns, opening, chosen).to(state.device)
