"""The left-right mirror (file a <-> g), a true symmetry of the game."""

from __future__ import annotations

from dataclasses import replace

import torch

from razzle.game.board import NUM_SQUARES, mirror_square, parse_square, square_name
from razzle.game.engine import derive_legal, repetition_key
from razzle.game.state import State

_SQUARE_MAP = [mirror_square(s) for s in range(NUM_SQUARES + 1)]


def mirror_state(state: State) -> State:
    """The mirrored batch: every piece, ball and the last knight destination reflected.

    Piece slots keep their order, so slot-indexed fields carry over and legal actions are
    regenerated. The repetition history restarts from the mirrored position (earlier
    positions are not re-keyed), which matters only for repetition draws after mirroring.
    """
    square_map = torch.tensor(_SQUARE_MAP, device=state.device)
    mirrored = replace(
        state,
        squares=square_map[state.squares],
        last_knight=square_map[state.last_knight],
        eligible=state.eligible.clone(),
        carrier=state.carrier.clone(),
        history=torch.full_like(state.history, -1),
    )
    derive_legal(mirrored)
    mirrored.legal &= ~mirrored.done.unsqueeze(1)
    at = mirrored.turn.clamp(max=mirrored.history.shape[1] - 1).unsqueeze(1)
    mirrored.history.scatter_(1, at, repetition_key(mirrored).unsqueeze(1))
    return mirrored


def mirror_action_text(text: str) -> str:
    """'b1-c3' -> 'f1-e3'; 'end' stays."""
    if text == "end":
        return text
    return "-".join(square_name(mirror_square(parse_square(p))) for p in text.split("-"))
