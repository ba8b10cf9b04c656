"""Preallocated search trees for B games: one row per node, flattened to [B * M, ...].

Node `k` of game `b` lives in row `b * M + k`. Node 0 is the root; nodes are handed out
in the order a game expands them. Two extra rows per game: NULL (never written; reads as
an unvisited child, so unexpanded slots need no masking) and SINK (absorbs the writes of
games that expand nothing in a step, so writes need no masking either).

Children are stored sparsely by the engine's 49 candidate slots of the parent, not by
the 897 action ids. Every node keeps its compact position (the State minus its
repetition history), packed into one integer and one boolean row so that gathering a
batch of positions is two index operations; a leaf is made by one batched `step` from
its parent. Repetition is settled from per-node turn-start keys instead (see `mcts`).
"""

from __future__ import annotations

from dataclasses import fields

import torch

from razzle.game.state import NUM_SLOTS, State

# The State's tensors a node keeps: all of them but the repetition history.
NODE_FIELDS = tuple(f.name for f in fields(State) if f.name not in ("history", "rules"))
VISITS, VALUE_SUM, OWN_SIGN = 0, 1, 2  # columns of Tree.stats


def _layout(template: State, names: tuple[str, ...]) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """name -> (first column, last column, per-game shape) within a packed row."""
    layout, start = {}, 0
    for name in names:
        shape = tuple(getattr(template, name).shape[1:])
        width = 1
        for size in shape:
            width *= size
        layout[name] = (start, start + width, shape)
        start += width
    return layout


class Tree:
    """Node storage for `nodes` real nodes per game, plus NULL and SINK.

    Per node:
      ints, flags        the position: the integer and the boolean NODE_FIELDS, packed
      stats  [., 3]      visits, value sum, edge sign. The value sum is from the view of
                         `mover`, the side to move at the parent (the root: its own side
                         to move), so a parent reads its children's Q directly. The edge
                         sign is +1 when the node's side to move is the parent's (the
                         same player continues a pass chain, or has just won with a pass)
                         and -1 when the turn passed to the opponent.
      mover  [.]         the side whose view the value sum takes
      prior  [., 49]     c_puct * prior at legal slots (tie-break jitter included),
                         -inf at illegal ones
      child  [., 49]     row of the child reached through each slot, or the game's NULL
      terminal [.]       the position is finished
      key    [.]         repetition key if the node starts a turn, else -1
      leaf_value [.]     the node's value when it was created (network or rules), from
                         its own side to move's view
    """

    def __init__(self, template: State, nodes: int):
        B, device = template.batch_size, template.device
        self.batch_size = B
        self.rows_per_game = M = nodes + 2
        self.base = torch.arange(B, device=device) * M
        self.null = self.base + nodes
        self.sink = self.base + nodes + 1
        flag_names = tuple(name for name in NODE_FIELDS if getattr(template, name).dtype == torch.bool)
        self.int_layout = _layout(template, tuple(name for name in NODE_FIELDS if name not in flag_names))
        self.bool_layout = _layout(template, flag_names)
        self.ints = torch.empty(B * M, max(end for _, end, _ in self.int_layout.values()), dtype=torch.int64, device=device)
        self.flags = torch.empty(B * M, max(end for _, end, _ in self.bool_layout.values()), dtype=torch.bool, device=device)
        self.stats = torch.zeros(B * M, 3, device=device)
        self.mover = torch.zeros(B * M, dtype=torch.int64, device=device)
        self.prior = torch.empty(B * M, NUM_SLOTS, device=device)
        self.child = self.null.view(B, 1, 1).expand(B, M, NUM_SLOTS).reshape(B * M, NUM_SLOTS).clone()
        self.terminal = torch.zeros(B * M, dtype=torch.bool, device=device)
        self.key = torch.full((B * M,), -1, dtype=torch.int64, device=device)
        self.leaf_value = torch.zeros(B * M, device=device)
        # Stepping needs a history tensor; repetition is handled by the search itself.
        self.no_history = torch.full((B, 1), -1, dtype=torch.int64, device=device)
        self.rules = template.rules

    def field(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        """One position field of the nodes at `rows` [n] -> [n, *shape]."""
        packed, layout = (self.ints, self.int_layout) if name in self.int_layout else (self.flags, self.bool_layout)
        start, end, shape = layout[name]
        return packed[:, start:end].index_select(0, rows).view(len(rows), *shape)

    def position(self, rows: torch.Tensor) -> State:
        """The positions at `rows` [B] as a State (with a placeholder history)."""
        values = {}
        for packed, layout in ((self.ints, self.int_layout), (self.flags, self.bool_layout)):
            gathered = packed.index_select(0, rows)
            for name, (start, end, shape) in layout.items():
                values[name] = gathered[:, start:end].view(len(rows), *shape)
        return State(**values, history=self.no_history, rules=self.rules)

    def write(
        self,
        rows: torch.Tensor,
        state: State,
        mover: torch.Tensor,
        own_sign: torch.Tensor,
        leaf_value: torch.Tensor,
        prior: torch.Tensor,
        key: torch.Tensor,
    ) -> None:
        """Create nodes at `rows` [B] (rows may repeat only at SINK)."""
        B = len(rows)
        for packed, layout in ((self.ints, self.int_layout), (self.flags, self.bool_layout)):
            row = torch.cat([getattr(state, name).reshape(B, -1) for name in layout], 1)
            packed.index_copy_(0, rows, row.to(packed.dtype))
        zeros = torch.zeros_like(leaf_value)
        self.stats.index_copy_(0, rows, torch.stack([zeros, zeros, own_sign], 1))
        self.mover.index_copy_(0, rows, mover)
        self.prior.index_copy_(0, rows, prior)
        self.terminal.index_copy_(0, rows, state.done)
        self.key.index_copy_(0, rows, key)
        self.leaf_value.index_copy_(0, rows, leaf_value)
