"""A batch of Razzle Dazzle positions as tensors with a leading batch dimension B."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from razzle.game.board import PIECES_PER_SIDE
from razzle.game.rules import Rules

KNIGHT_SLOTS = PIECES_PER_SIDE * 8  # 40: jump j of piece slot p is slot p * 8 + j
PASS_SLOT = KNIGHT_SLOTS  # 40..47: pass direction d is slot 40 + d
END_SLOT = PASS_SLOT + 8  # 48
NUM_SLOTS = END_SLOT + 1  # 49 candidate actions per position, at most 41 of them legal


@dataclass
class State:
    """B games. Piece slots are stable per game; the engine never reorders them.

    Core fields (the position itself):
      squares    [B, 2, 5] int64  square of each side's pieces (side 0 = Player 1)
      eligible   [B, 2, 5] bool   may the piece receive a pass
      carrier    [B, 2]    int64  slot of the piece that holds each side's ball
      to_move    [B]       int64  0 = Player 1, 1 = Player 2
      mid_chain  [B]       bool   a pass has been made in the current turn
      last_knight[B]       int64  destination of the previous turn's knight move, or
                                  NO_SQUARE when that turn was a pass chain (or none)
      turn       [B]       int64  completed turns
      done       [B]       bool
      winner     [B]       int64  0, 1, or -1 (draw, or still running)
      history    [B, H]    int64  repetition key at the start of turn t in column t, -1 where
                                  unused (H = max_turns + 1 by default)

    Derived by the engine for every new state (legal actions are generated once):
      actions    [B, 49]   int64  action index of each candidate slot
      legal      [B, 49]   bool   which slots are legal (none once done)
      receiver   [B, 8]    int64  slot of the piece a pass in direction d reaches
      forced     [B]       bool   the side to move must pass this turn
    """

    squares: torch.Tensor
    eligible: torch.Tensor
    carrier: torch.Tensor
    to_move: torch.Tensor
    mid_chain: torch.Tensor
    last_knight: torch.Tensor
    turn: torch.Tensor
    done: torch.Tensor
    winner: torch.Tensor
    history: torch.Tensor
    actions: torch.Tensor
    legal: torch.Tensor
    receiver: torch.Tensor
    forced: torch.Tensor
    rules: Rules

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rules"}

    def _map(self, fn) -> State:
        return replace(self, **{name: fn(t) for name, t in self._tensors().items()})

    @property
    def batch_size(self) -> int:
        return self.to_move.shape[0]

    @property
    def device(self) -> torch.device:
        return self.to_move.device

    def to(self, device: torch.device | str) -> State:
        return self._map(lambda t: t.to(device))

    def clone(self) -> State:
        return self._map(torch.clone)

    def index(self, idx: torch.Tensor | slice | int) -> State:
        """Select games (an index tensor, a boolean mask or a slice); keeps the batch dim."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return self._map(lambda t: t[idx])

    def where(self, mask: torch.Tensor, other: State) -> State:
        """Per game: `other` where mask is True, else self (e.g. to restart finished games)."""
        mine, theirs = self._tensors(), other._tensors()
        out = {}
        for name, t in mine.items():
            m = mask.view(-1, *([1] * (t.dim() - 1)))
            out[name] = torch.where(m, theirs[name], t)
        return replace(self, **out)

    def assign_where_(self, mask: torch.Tensor, other: State) -> State:
        """In place: overwrite the masked games with `other`'s (restart finished games in a
        loop that owns this batch); returns self. Touches only the masked rows."""
        rows = mask.nonzero().squeeze(1)
        if rows.numel():
            theirs = other._tensors()
            for name, t in self._tensors().items():
                t.index_copy_(0, rows, theirs[name].index_select(0, rows))
        return self

    @staticmethod
    def cat(states: list[State]) -> State:
        first = states[0]
        parts = [s._tensors() for s in states]
        return replace(first, **{name: torch.cat([p[name] for p in parts]) for name in parts[0]})

    @property
    def result(self) -> torch.Tensor:
        """+1 / -1 / 0 from Player 1's view for finished games (0 while running)."""
        return torch.where(self.winner < 0, 0, 1 - 2 * self.winner)

    @property
    def carrier_square(self) -> torch.Tensor:
        """[B, 2] square of each side's ball."""
        return self.squares.gather(2, self.carrier.unsqueeze(2)).squeeze(2)
