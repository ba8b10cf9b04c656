"""Policy vectors in the network's canonical perspective, and their left-right mirror.

The policy head has one logit per action index of `razzle.game.actions` (897: 8 knight
planes and 8 pass planes over 56 squares, then `end`), read in the side to move's
canonical perspective (`razzle.model.planes`): for Player 2 an index means the action of
the half-turned board. `rotate_actions` converts both ways (it is an involution) and is
the identity for Player 1. The left-right mirror of a canonical policy is
`mirror_actions`, which commutes with the half-turn.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from razzle.game.actions import MIRROR_ACTION, NUM_ACTIONS, ROTATE_ACTION, rotate_actions
from razzle.game.state import State


def canonical_actions(actions: torch.Tensor, to_move: torch.Tensor) -> torch.Tensor:
    """Absolute action ids [B, ...] -> canonical ids (and back: the map is an involution)."""
    player2 = (to_move == 1).view(-1, *([1] * (actions.dim() - 1)))
    return torch.where(player2, rotate_actions(actions), actions)


@lru_cache(maxsize=None)
def _index(name: str, device: torch.device) -> torch.Tensor:
    table = {"identity": range(NUM_ACTIONS), "rotate": ROTATE_ACTION, "mirror": MIRROR_ACTION}[name]
    return torch.tensor(list(table), dtype=torch.int64, device=device)


def reorient_policy(policy: torch.Tensor, to_move: torch.Tensor) -> torch.Tensor:
    """A per-action tensor [B, 897] from absolute to canonical order, or back.

    Entry ``a`` of the result is entry ``rotate(a)`` of the input for Player 2 rows, so
    canonical logits become absolute ones with the same call.
    """
    index = torch.where(
        (to_move == 1).unsqueeze(1), _index("rotate", policy.device), _index("identity", policy.device)
    )
    return policy.gather(1, index)


def mirror_policy(policy: torch.Tensor) -> torch.Tensor:
    """A per-action tensor [..., 897] of the left-right mirrored positions."""
    return policy[..., _index("mirror", policy.device)]


def legal_mask(state: State) -> torch.Tensor:
    """[B, 897] bool: the legal actions of each position, in canonical ids."""
    ids = canonical_actions(state.actions, state.to_move)
    mask = torch.zeros(state.batch_size, NUM_ACTIONS, dtype=torch.bool, device=state.device)
    return mask.scatter_(1, ids, state.legal)
