"""The network's input planes, in one place.

A batch of positions becomes a float tensor ``[B, NUM_INPUT_PLANES, 8, 7]`` (ranks x
files; square ``s`` is ``[s // 7, s % 7]``), always seen by the side to move: for
Player 2 the board is turned a half-turn (square ``s`` -> ``55 - s``), so the side to
move always plays "up" towards rank 8. Policy indices follow the same perspective
(`razzle.model.policy`).

====  ===========================  ===================================================
 #    plane                        value
====  ===========================  ===================================================
 0    own pieces                   1 on each square of the side to move's pieces
 1    own ball                     1 on its carrier's square
 2    own eligible pieces          1 on each own piece that may receive a pass
 3    opponent pieces              as 0, for the opponent
 4    opponent ball                as 1
 5    opponent eligible pieces     as 2
 6    opponent's last knight move  1 on the destination of the opponent's previous
                                   knight move (what triggers a forced pass), else 0
 7    mid-chain                    all 1 once a pass has been made this turn
 8    forced pass                  all 1 when the side to move must pass this turn
 9    turn limit                   all ``turn / max_turns`` (1 = the last turn)
10    repetition                   all ``(occurrences - 1) / 2`` of the current turn-start
                                   position (0.5: one more and the game is drawn); 0
                                   mid-chain or without the repetition rule
11    ones                         all 1, so the convolutions see the board's edge
====  ===========================  ===================================================

Everything that decides legality and the outcome is here. Bump `ENCODING_VERSION`
whenever this table changes: model files and sample shards carry it and are refused
by a razzle that encodes differently.
"""

from __future__ import annotations

import torch

from razzle.game.board import NO_SQUARE, NUM_FILES, NUM_RANKS, NUM_SQUARES
from razzle.game.engine import repetition_key
from razzle.game.state import State

ENCODING_VERSION = 1
PLANE_NAMES = (
    "own_pieces",
    "own_ball",
    "own_eligible",
    "opponent_pieces",
    "opponent_ball",
    "opponent_eligible",
    "opponent_last_knight",
    "mid_chain",
    "forced",
    "turn_limit",
    "repetition",
    "ones",
)
NUM_INPUT_PLANES = len(PLANE_NAMES)
BOARD_SHAPE = (NUM_RANKS, NUM_FILES)


def canonical_squares(squares: torch.Tensor, to_move: torch.Tensor) -> torch.Tensor:
    """Squares seen by the side to move: half-turned for Player 2 (NO_SQUARE stays).

    `to_move` [B] broadcasts over the trailing dimensions of `squares` [B, ...].
    """
    player2 = (to_move == 1).view(-1, *([1] * (squares.dim() - 1)))
    return torch.where(player2 & (squares != NO_SQUARE), NUM_SQUARES - 1 - squares, squares)


def encode_states(state: State) -> torch.Tensor:
    """[B, NUM_INPUT_PLANES, 8, 7] float32 planes of a batch, on the state's device."""
    B = state.batch_size
    me = state.to_move
    own_first = torch.stack([me, 1 - me], 1)  # [B, 2]: own side, then the opponent
    squares = canonical_squares(state.squares.gather(1, own_first.unsqueeze(2).expand(B, 2, 5)), me)
    eligible = state.eligible.gather(1, own_first.unsqueeze(2).expand(B, 2, 5))
    balls = canonical_squares(state.carrier_square.gather(1, own_first), me)
    last_knight = canonical_squares(state.last_knight, me)

    # One spare column past the last square absorbs NO_SQUARE markers.
    board = torch.zeros(B, NUM_INPUT_PLANES, NUM_SQUARES + 1, device=state.device)
    ones = torch.ones(B, 5, device=state.device)
    for side, offset in ((0, 0), (1, 3)):
        board[:, offset].scatter_(1, squares[:, side], ones)
        board[:, offset + 1].scatter_(1, balls[:, side : side + 1], ones[:, :1])
        board[:, offset + 2].scatter_(1, squares[:, side], eligible[:, side].float())
    board[:, 6].scatter_(1, last_knight.unsqueeze(1), ones[:, :1])
    board[:, 7] = state.mid_chain.float().unsqueeze(1)
    board[:, 8] = state.forced.float().unsqueeze(1)
    board[:, 9] = (state.turn.float() / state.rules.max_turns).unsqueeze(1)
    board[:, 10] = _repetition_level(state).unsqueeze(1)
    board[:, 11] = 1.0
    return board[:, :, :NUM_SQUARES].reshape(B, NUM_INPUT_PLANES, *BOARD_SHAPE)


def _repetition_level(state: State) -> torch.Tensor:
    """[B] 0, 0.5 or 1: earlier occurrences of the current turn-start position, halved."""
    if not state.rules.repetition_draw:
        return torch.zeros(state.batch_size, device=state.device)
    occurrences = (state.history == repetition_key(state).unsqueeze(1)).sum(1)
    level = (occurrences - 1).clamp(0, 2).float() / 2
    return torch.where(state.mid_chain, 0.0, level)


def mirror_planes(planes: torch.Tensor) -> torch.Tensor:
    """Planes of the left-right mirrored positions (file a <-> g); works in canonical space
    because the mirror commutes with the half-turn."""
    return planes.flip(-1)
