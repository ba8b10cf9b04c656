"""The action encoding, in one place.

An atomic action is an index in ``[0, NUM_ACTIONS)``, laid out as convolutional planes over
the 56 squares, the way AlphaZero encodes chess moves:

- ``plane * 56 + from_square`` for ``plane`` 0-7: knight jump ``KNIGHT_JUMPS[plane]`` of the
  piece on ``from_square``;
- ``(8 + d) * 56 + carrier_square`` for ``d`` 0-7: pass along ``DIRECTIONS[d]`` from the
  ball's square (the receiver is the first occupied square on that line);
- ``END`` = 896: end the pass chain.

Indices are absolute (Player 1's view of the board). The network's canonical perspective
and the left-right mirror are permutations of these indices (`rotate_actions`,
`mirror_actions`).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from razzle.game.board import (
    MIRROR_DIRECTION,
    MIRROR_JUMP,
    NUM_SQUARES,
    mirror_square,
    rotate_square,
)

KNIGHT_PLANES = 8
PASS_PLANES = 8
NUM_PLANES = KNIGHT_PLANES + PASS_PLANES
END = NUM_PLANES * NUM_SQUARES  # 896
NUM_ACTIONS = END + 1  # 897


def knight_action(from_square: int, jump: int) -> int:
    return jump * NUM_SQUARES + from_square


def pass_action(carrier_square: int, direction: int) -> int:
    return (KNIGHT_PLANES + direction) * NUM_SQUARES + carrier_square


def decode(action: int) -> tuple[str, int, int]:
    """('knight', from_square, jump) | ('pass', carrier_square, direction) | ('end', -1, -1)."""
    if action == END:
        return "end", -1, -1
    if not 0 <= action < END:
        raise ValueError(f"action index {action} outside [0, {NUM_ACTIONS})")
    plane, sq = divmod(action, NUM_SQUARES)
    if plane < KNIGHT_PLANES:
        return "knight", sq, plane
    return "pass", sq, plane - KNIGHT_PLANES


def _permutation(square_map, jump_map, direction_map) -> list[int]:
    perm = []
    for action in range(END):
        plane, sq = divmod(action, NUM_SQUARES)
        if plane < KNIGHT_PLANES:
            perm.append(knight_action(square_map(sq), jump_map(plane)))
        else:
            perm.append(pass_action(square_map(sq), direction_map(plane - KNIGHT_PLANES)))
    return perm + [END]


MIRROR_ACTION = _permutation(mirror_square, MIRROR_JUMP.__getitem__, MIRROR_DIRECTION.__getitem__)
ROTATE_ACTION = _permutation(rotate_square, lambda j: (j + 4) % 8, lambda d: (d + 4) % 8)


@lru_cache(maxsize=None)
def _permutation_tensor(name: str, device: torch.device) -> torch.Tensor:
    table = {"mirror": MIRROR_ACTION, "rotate": ROTATE_ACTION}[name]
    return torch.tensor(table, dtype=torch.int64, device=device)


def mirror_actions(actions: torch.Tensor) -> torch.Tensor:
    """Action indices of the left-right mirrored board (an involution)."""
    return _permutation_tensor("mirror", actions.device)[actions]


def rotate_actions(actions: torch.Tensor) -> torch.Tensor:
    """Action indices seen from the other side of the board (a half-turn; an involution)."""
    return _permutation_tensor("rotate", actions.device)[actions]
