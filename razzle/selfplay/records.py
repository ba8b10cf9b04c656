"""Game records of self-play, kept as integers while games run and turned into notation
once per finished game: the loop does no Python per game per move for them."""

from __future__ import annotations

import torch

from razzle.game.actions import END, KNIGHT_PLANES, NUM_SQUARES
from razzle.game.board import square_name, tables
from razzle.game.state import State

OPENING_TURNS = 5
SQUARE_NAMES = [square_name(square) for square in range(NUM_SQUARES)]


def move_codes(state: State, actions: torch.Tensor) -> torch.Tensor:
    """[B] one integer per chosen action that names it in notation without the position:
    action id * NUM_SQUARES + target square (a knight's landing square, a pass's
    receiver; 0 for END)."""
    plane, origin = actions // NUM_SQUARES, actions % NUM_SQUARES
    knight = tables(actions.device).knight_to.view(-1)
    landing = knight.take(origin * KNIGHT_PLANES + plane.clamp(max=KNIGHT_PLANES - 1))
    receiver = state.receiver.gather(1, (plane - KNIGHT_PLANES).clamp(0, 7).unsqueeze(1))
    side = state.to_move.view(-1, 1, 1).expand(-1, 1, state.squares.shape[2])
    caught = state.squares.gather(1, side).squeeze(1).gather(1, receiver).squeeze(1)
    target = torch.where(plane < KNIGHT_PLANES, landing, torch.where(actions == END, 0, caught))
    return actions * NUM_SQUARES + target


def game_from_codes(codes: list[int]) -> tuple[list[str], int, tuple[str, ...]]:
    """A finished game's action texts, its turns that began with a pass, and its opening
    (the first OPENING_TURNS actions that began a turn), from its `move_codes`.

    A position is mid-chain exactly when the action before it was a pass."""
    texts, turns_with_pass, opening, mid_chain = [], 0, [], False
    for code in codes:
        action, target = divmod(code, NUM_SQUARES)
        text = "end" if action == END else f"{SQUARE_NAMES[action % NUM_SQUARES]}-{SQUARE_NAMES[target]}"
        is_pass = action != END and action // NUM_SQUARES >= KNIGHT_PLANES
        if not mid_chain:
            turns_with_pass += is_pass
            if len(opening) < OPENING_TURNS:
                opening.append(text)
        texts.append(text)
        mid_chain = is_pass
    return texts, turns_with_pass, tuple(opening)


class MoveLog:
    """The move codes of the game in each batch slot, on the games' device: one column per
    move, written for all searched games at once; read once per finished game."""

    def __init__(self, width: int, device: torch.device, capacity: int = 256):
        self.codes = torch.zeros(width, capacity, dtype=torch.long, device=device)
        self.count = torch.zeros(width, dtype=torch.long, device=device)
        self.longest = 0  # an upper bound of count, known without reading the device

    def record(self, slots: torch.Tensor, codes: torch.Tensor) -> None:
        if self.longest == self.codes.shape[1]:
            self.codes = torch.cat([self.codes, torch.zeros_like(self.codes)], 1)
        self.codes[slots, self.count[slots]] = codes
        self.count[slots] += 1
        self.longest += 1

    def game(self, slot: int) -> list[int]:
        return self.codes[slot, : int(self.count[slot])].tolist()

    def clear(self, slots: list[int]) -> None:
        self.count[slots] = 0
        self.longest = int(self.count.max())
