"""Batched matches between two players, colours alternated (tests, the arena, baselines)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from razzle.game.actions import END
from razzle.game.engine import initial_state, step
from razzle.game.rules import Rules
from razzle.game.state import State

# A player maps a batch of positions (all with it to move) to one legal action id per game.
Player = Callable[[State], torch.Tensor]


@dataclass(frozen=True)
class MatchResult:
    """Outcomes from the first player's view."""

    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        """Points per game: a win 1, a draw 1/2."""
        return (self.wins + 0.5 * self.draws) / self.games

    def score_interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval of the score (95% by default); unlike the normal
        approximation it stays meaningful at 0 and at 1 (a clean sweep of 100 games
        still leaves about 0.963-1.0)."""
        n, p = self.games, self.score
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - spread), min(1.0, centre + spread)


def play_match(
    first: Player,
    second: Player,
    games: int,
    rules: Rules | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> MatchResult:
    """Play `games` games at once; `first` is Player 1 in the even-numbered games.

    Each player is called once per ply on the games where it is to move, so a searching
    player searches all of its games in one batch."""
    if games < 1:
        raise ValueError(f"a match needs at least one game, got {games}")
    state = initial_state(games, rules, device)
    first_side = torch.arange(games, device=state.device) % 2  # 0: first plays Player 1
    with tqdm(total=games, desc="match", unit="game", disable=not progress) as bar:
        while not bool(state.done.all()):
            actions = torch.full((games,), END, dtype=torch.int64, device=state.device)
            first_to_move = state.to_move == first_side
            for player, mine in ((first, first_to_move), (second, ~first_to_move)):
                games_to_play = (mine & ~state.done).nonzero().squeeze(1)
                if games_to_play.numel():
                    actions[games_to_play] = player(state.index(games_to_play))
            finished_before = int(state.done.sum())
            state = step(state, actions)
            bar.update(int(state.done.sum()) - finished_before)
    first_won = state.winner == first_side
    draws = int((state.winner < 0).sum())
    wins = int(first_won.sum())
    return MatchResult(wins=wins, draws=draws, losses=games - wins - draws)
