"""Game records of self-play, kept as integers while games run and turned into notation
once per finished game: the loop does no Python per game per move for them.

Beside each move the log keeps what the search thought before it (the root value and the
TOP_MOVES most visited actions with their visit shares), written for all searched games
at once and turned into the record's annotations with the moves."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from razzle.game.actions import END, KNIGHT_PLANES, NUM_SQUARES
from razzle.game.board import square_name, tables
from razzle.game.notation import Annotation
from razzle.game.state import NUM_SLOTS, State
from razzle.search.mcts import SearchResult

OPENING_TURNS = 5
TOP_MOVES = 3
SQUARE_NAMES = [square_name(square) for square in range(NUM_SQUARES)]


def move_codes(state: State, actions: torch.Tensor) -> torch.Tensor:
    """[B] or [B, K] one integer per action of each game that names it in notation without
    the position: action id * NUM_SQUARES + target square (a knight's landing square, a
    pass's receiver; 0 for END)."""
    shape, actions = actions.shape, actions.view(len(actions), -1)
    plane, origin = actions // NUM_SQUARES, actions % NUM_SQUARES
    knight = tables(actions.device).knight_to.view(-1)
    landing = knight.take(origin * KNIGHT_PLANES + plane.clamp(max=KNIGHT_PLANES - 1))
    receiver = state.receiver.gather(1, (plane - KNIGHT_PLANES).clamp(0, 7))
    side = state.to_move.view(-1, 1, 1).expand(-1, 1, state.squares.shape[2])
    caught = state.squares.gather(1, side).squeeze(1).gather(1, receiver)
    target = torch.where(plane < KNIGHT_PLANES, landing, torch.where(actions == END, 0, caught))
    return (actions * NUM_SQUARES + target).view(shape)


def top_moves(state: State, result: SearchResult) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, TOP_MOVES] move codes and visit shares of each root's most visited actions,
    most visited first; equal visits go to the lower slot, so a game's list does not
    depend on the batch it was searched in. Shares are 0 past the visited actions."""
    slots = torch.arange(NUM_SLOTS, device=result.visits.device)
    rank = result.visits * NUM_SLOTS + (NUM_SLOTS - 1 - slots)
    slot = rank.topk(TOP_MOVES, dim=1).indices
    return move_codes(state, result.actions.gather(1, slot)), result.policy.gather(1, slot)


def action_text(code: int) -> str:
    action, target = divmod(code, NUM_SQUARES)
    return "end" if action == END else f"{SQUARE_NAMES[action % NUM_SQUARES]}-{SQUARE_NAMES[target]}"


def game_from_codes(codes: list[int]) -> tuple[list[str], int, tuple[str, ...]]:
    """A finished game's action texts, its turns that began with a pass, and its opening
    (the first OPENING_TURNS actions that began a turn), from its `move_codes`.

    A position is mid-chain exactly when the action before it was a pass."""
    texts, turns_with_pass, opening, mid_chain = [], 0, [], False
    for code in codes:
        action, text = code // NUM_SQUARES, action_text(code)
        is_pass = action != END and action // NUM_SQUARES >= KNIGHT_PLANES
        if not mid_chain:
            turns_with_pass += is_pass
            if len(opening) < OPENING_TURNS:
                opening.append(text)
        texts.append(text)
        mid_chain = is_pass
    return texts, turns_with_pass, tuple(opening)


@dataclass
class LoggedGame:
    """One slot's game as logged: per move its code, the root value of the search before
    it and that search's top moves (codes and visit shares)."""

    codes: list[int]
    values: list[float]
    top_codes: list[list[int]]
    top_shares: list[list[float]]

    def annotations(self) -> list[Annotation]:
        """One per move; top moves never visited are left out."""
        return [
            Annotation(value, tuple((action_text(code), share) for code, share in zip(codes, shares) if share > 0))
            for value, codes, shares in zip(self.values, self.top_codes, self.top_shares)
        ]


class MoveLog:
    """The moves of the game in each batch slot with what the search thought before each,
    on the games' device: one column per move, written for all searched games at once;
    read once per finished game."""

    def __init__(self, width: int, device: torch.device, capacity: int = 256):
        self.codes = torch.zeros(width, capacity, dtype=torch.long, device=device)
        self.values = torch.zeros(width, capacity, device=device)
        self.top_codes = torch.zeros(width, capacity, TOP_MOVES, dtype=torch.long, device=device)
        self.top_shares = torch.zeros(width, capacity, TOP_MOVES, device=device)
        self.count = torch.zeros(width, dtype=torch.long, device=device)
        self.longest = 0  # an upper bound of count, known without reading the device

    def record(self, slots: torch.Tensor, state: State, actions: torch.Tensor, result: SearchResult) -> None:
        """The `actions` chosen in `slots` from their positions `state` after the search `result`."""
        if self.longest == self.codes.shape[1]:
            for name in ("codes", "values", "top_codes", "top_shares"):
                log = getattr(self, name)
                setattr(self, name, torch.cat([log, torch.zeros_like(log)], 1))
        column = self.count[slots]
        top_codes, top_shares = top_moves(state, result)
        self.codes[slots, column] = move_codes(state, actions)
        self.values[slots, column] = result.root_value.to(self.values.dtype)
        self.top_codes[slots, column] = top_codes
        self.top_shares[slots, column] = top_shares
        self.count[slots] += 1
        self.longest += 1

    def game(self, slot: int) -> LoggedGame:
        count = int(self.count[slot])
        return LoggedGame(
            self.codes[slot, :count].tolist(),
            self.values[slot, :count].tolist(),
            self.top_codes[slot, :count].tolist(),
            self.top_shares[slot, :count].tolist(),
        )

    def clear(self, slots: list[int]) -> None:
        self.count[slots] = 0
        self.longest = int(self.count.max())
