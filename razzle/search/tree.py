"""Preallocated search trees for B games: one row per node, flattened to [B * M, ...].

Node `k` of game `b` lives in row `b * M + k`. Node 0 is the root; nodes are handed out
in the order a game expands them. One more row per game, ABOVE, is the root's parent: it
holds the root's incoming edge, so that every node's visits and value live on the edge
that leads to it. One last row, NULL, shared by all games, is what an unexpanded slot
points to and where the writes of games that expand nothing in a step go: it is never
read, so writes need no masking.

The statistics are kept on the edges, in the parent's row, so that choosing a child is
one contiguous read of the parent's row (its children's visits, values and priors side
by side) instead of a gather from 49 child rows. Children are stored sparsely by the
engine's 49 candidate slots of the parent, not by the 897 action ids. Every node keeps
its compact position (the State minus its repetition history), packed into one integer
and one boolean row so that gathering a batch of positions is two index operations; a
leaf is made by one batched `step` from its parent. Repetition is settled from per-node
turn-start keys instead (see `mcts`).
"""

from __future__ import annotations

from dataclasses import fields

import torch

from razzle.game.state import NUM_SLOTS, State

# The State's tensors a node keeps: all of them but the repetition history.
NODE_FIELDS = tuple(f.name for f in fields(State) if f.name not in ("history", "rules"))
# Rows of a node's edge block (one entry per slot): Q, the child's mean value from this
# node's side to move (0 while unvisited); N1, 1 + the child's visits; PRIOR, c_puct times
# the prior (jittered), -inf at illegal slots; W, the child's value sum.
Q, N1, PRIOR, W = 0, 1, 2, 3
EDGE_ROWS = 4
# Columns of Tree.scores: what choosing among a node's children needs from the node itself.
EXPLORE, UNVISITED_Q = 0, 1


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
    """Node storage for `nodes` real nodes per game, ABOVE, and the shared NULL row.

    Per node:
      ints, flags        the position: the integer and the boolean NODE_FIELDS, packed
      edges  [., 4, 49]  Q, N1, PRIOR, W of each slot's edge (rows above). Values are
                         from the view of this node's side to move, so a node reads its
                         children's Q directly.
      scores [., 2]      EXPLORE, sqrt of the node's visits, and UNVISITED_Q, the value
                         given to its unvisited children (its own value minus
                         fpu_reduction); refreshed whenever the node is backed up
      edge   [.]         flat index of the node's incoming edge in `edges` (its Q entry)
      mover  [.]         the side whose view the incoming edge's values take (the side to
                         move at the parent; the root: its own side to move)
      sign   [.]         +1 when the node's side to move is `mover` (the same player
                         continues a pass chain, or has just won with a pass), -1 when the
                         turn passed to the opponent
      child  [., 49]     row of the child reached through each slot, or NULL
      best   [.]         the slot PUCT chooses at the node, `best_child` the row it leads
                         to (NULL: not expanded yet), `goes_on` whether a descent goes on
                         from there (it is a node, not a finished position); kept by
                         `refresh_choices` for the eager search (below)
      key    [.]         repetition key if the node starts a turn, else -1
      leaf_value [.]     the node's value when it was created (network or rules), from
                         its own side to move's view
      terminal [.]       the position is finished (a view of the packed `done` flag)
    """

    def __init__(self, template: State, nodes: int, spare: dict[str, torch.Tensor] | None, hold):
        """spare: the `storage` of a finished search's tree, whose tables this tree takes
        over where they are large enough (a search of the same or a smaller batch).
        hold(name, tensor) -> tensor: where the tree's constant tensors are kept (a captured
        search keeps them at fixed addresses, see `mcts`)."""
        B, device = template.batch_size, template.device
        self.batch_size = B
        self.rows_per_game = M = nodes + 1
        self.base = hold("tree.base", torch.arange(B, device=device) * M)
        self.above = hold("tree.above", self.base + nodes)
        self.null = B * M
        flag_names = tuple(name for name in NODE_FIELDS if getattr(template, name).dtype == torch.bool)
        self.int_layout = _layout(template, tuple(name for name in NODE_FIELDS if name not in flag_names))
        self.bool_layout = _layout(template, flag_names)
        # No table is initialised: a node's rows are all written when it is created, before
        # anything reads them (filling the tables of 1024 games, tens of MB, would cost
        # several simulations' time per search). Only NULL's row is set, as it is read.
        self.storage: dict[str, torch.Tensor] = {}
        spare = spare or {}

        def table(name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
            kept = spare.get(name)
            if kept is None or kept.shape[1:] != shape or kept.dtype != dtype or kept.device != device or len(kept) <= self.null:
                kept = torch.empty(self.null + 1, *shape, dtype=dtype, device=device)
            self.storage[name] = kept
            return kept[: self.null + 1]

        self.ints = table("ints", (max(end for _, end, _ in self.int_layout.values()),), torch.int64)
        self.flags = table("flags", (max(end for _, end, _ in self.bool_layout.values()),), torch.bool)
        self.edges = table("edges", (EDGE_ROWS, NUM_SLOTS))
        self.child = table("child", (NUM_SLOTS,), torch.int64)
        self.scores = table("scores", (2,))
        self.edge = table("edge", (), torch.int64)
        self.mover = table("mover", (), torch.int64)
        self.sign = table("sign", ())
        self.key = table("key", (), torch.int64)
        self.leaf_value = table("leaf_value", ())
        self.best = table("best", (), torch.int64)
        self.best_child = table("best_child", (), torch.int64)
        self.goes_on = table("goes_on", (), torch.bool)
        self.flags[self.null] = False
        self.child[self.null] = self.null
        self.edge[self.null] = self.null * EDGE_ROWS * NUM_SLOTS
        self._empty_edges = hold("tree.empty_edges", torch.tensor([0.0, 1.0, 0.0, 0.0], device=device)).view(
            1, EDGE_ROWS, 1
        )
        # Stepping needs a history tensor; repetition is handled by the search itself.
        self.no_history = hold("tree.no_history", torch.full((B, 1), -1, dtype=torch.int64, device=device))
        self.rules = template.rules

    @property
    def terminal(self) -> torch.Tensor:
        """[rows] whether each node's position is finished: a view of the packed `done`
        flag, made where it is read, so that a compiled piece that writes the flags and
        then reads it takes one table, not two aliases of it (inductor would copy the
        whole table to keep the second up to date)."""
        return self.flags[:, self.bool_layout["done"][0]]

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

    def children(self, rows: torch.Tensor, what: int) -> torch.Tensor:
        """[n, 49] one edge row (Q, N1, PRIOR or W) of the nodes at `rows`."""
        return self.edges[:, what].index_select(0, rows)

    def expanded(self, rows: torch.Tensor) -> torch.Tensor:
        """[n, 49] which slots of the nodes at `rows` lead to a child (every child has been
        visited: it is created by the simulation that first takes its edge)."""
        return self.children(rows, N1) > 1

    def incoming(self, rows: torch.Tensor, what: int) -> torch.Tensor:
        """[n] one entry (Q, N1, PRIOR or W) of the edges leading to the nodes at `rows`:
        a node's own visits and value (from its `mover`'s view) live there."""
        return self.edges.take(self.edge.index_select(0, rows) + what * NUM_SLOTS)

    def visits(self, rows: torch.Tensor) -> torch.Tensor:
        """[n] visits of the nodes at `rows`."""
        return self.incoming(rows, N1) - 1

    def write(
        self,
        rows: torch.Tensor,
        state: State,
        edge: torch.Tensor,
        mover: torch.Tensor,
        sign: torch.Tensor,
        leaf_value: torch.Tensor,
        prior: torch.Tensor,
        key: torch.Tensor,
    ) -> None:
        """Create nodes at `rows` [B] (rows may repeat only at NULL), with no children
        and unvisited edges; the backup that follows gives them their first visit.
        `edge`: each node's incoming edge (NULL's own for the rows written to NULL)."""
        B = len(rows)
        for packed, layout in ((self.ints, self.int_layout), (self.flags, self.bool_layout)):
            row = torch.cat([getattr(state, name).reshape(B, -1) for name in layout], 1)
            packed.index_copy_(0, rows, row.to(packed.dtype))
        edges = self._empty_edges.expand(B, EDGE_ROWS, NUM_SLOTS).clone()
        edges[:, PRIOR] = prior
        self.edges.index_copy_(0, rows, edges)
        self.child.index_copy_(0, rows, torch.full_like(prior, self.null, dtype=torch.int64))
        self.edge.index_copy_(0, rows, edge)
        self.mover.index_copy_(0, rows, mover)
        self.sign.index_copy_(0, rows, sign)
        self.key.index_copy_(0, rows, key)
        self.leaf_value.index_copy_(0, rows, leaf_value)

    def back_up(self, rows: torch.Tensor, value: torch.Tensor, fpu_reduction: float) -> None:
        """Add one visit and `value` [n] (from each node's `mover` view; 0 at NULL entries)
        to the incoming edge of every node `rows` [n], then refresh those nodes' Q and
        scores. The nodes are distinct, so no two real entries share an edge; NULL
        entries all write to NULL's own row."""
        at = self.edge.index_select(0, rows)
        n1 = self.edges.take(at + N1 * NUM_SLOTS) + (rows != self.null).float()
        total = self.edges.take(at + W * NUM_SLOTS) + value
        visits = n1 - 1
        self.set_edges(at, (Q, N1, W), (total / visits.clamp(min=1), n1, total))
        self.refresh_scores(rows, visits, total, fpu_reduction)

    def set_edges(self, at: torch.Tensor, what: tuple[int, ...], values: tuple[torch.Tensor, ...]) -> None:
        """Set entries `what` (Q, N1, PRIOR or W) of the edges whose Q entries are at flat
        indices `at` [n] to `values` (one [n] tensor each), in one write."""
        if torch.compiler.is_compiling():
            # Inductor writes a table in place only when every write to it in a graph is
            # indexed on its own shape; a write through a flattened view (put_ is one)
            # next to the nodes' row writes makes it copy the whole table on every call.
            # Eager mode keeps the flat put_: index tuples cost it 1.5-2x for this write.
            row, slot = at // (EDGE_ROWS * NUM_SLOTS), at % NUM_SLOTS
            entries = torch.stack([torch.full_like(at, entry) for entry in what])
            self.edges.index_put_((row, entries, slot), torch.stack(values))
        else:
            self.edges.put_(torch.cat([at + entry * NUM_SLOTS for entry in what]), torch.cat(values))

    def link_child(self, parent: torch.Tensor, slot: torch.Tensor, rows: torch.Tensor) -> None:
        """Point slot `slot` of each node `parent` to the child at `rows` (see `set_edges`
        on the compiled form)."""
        if torch.compiler.is_compiling():
            self.child.index_put_((parent, slot), rows)
        else:
            self.child.put_(parent * NUM_SLOTS + slot, rows)

    def refresh_choices(self, rows: torch.Tensor) -> None:
        """PUCT's choice at the nodes `rows`, kept until their next backup. A node's choice
        depends only on its own statistics and its children's edges, and both change
        only when a simulation passes through it: choosing once after each backup
        instead of on every descent is exact, and leaves the descent nothing but
        following `best_child`."""
        slot = puct_choice(self.edges, self.scores, rows)
        child = self.child.view(-1).index_select(0, rows * NUM_SLOTS + slot)
        self.best.index_copy_(0, rows, slot)
        self.best_child.index_copy_(0, rows, child)
        self.goes_on.index_copy_(0, rows, (child != self.null) & ~self.terminal.index_select(0, child))

    def refresh_scores(self, rows: torch.Tensor, visits: torch.Tensor, total: torch.Tensor, fpu: float) -> None:
        """Scores of the nodes at `rows` from their visits and value sum (`mover` view)."""
        own_value = total * self.sign.index_select(0, rows) / visits.clamp(min=1)
        self.scores.index_copy_(0, rows, torch.stack([visits.sqrt(), own_value - fpu], 1))


def puct_choice(edges: torch.Tensor, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """PUCT choice [n] (a slot) at each node row: argmax of Q + c P sqrt(N) / (1 + n).

    Unvisited children are valued at the node's own value minus fpu_reduction (its
    UNVISITED_Q); illegal slots have prior -inf; ties are broken by the prior's jitter."""
    q, n1, prior = edges[:, : PRIOR + 1].index_select(0, rows).unbind(1)
    own = scores.index_select(0, rows)
    # An unvisited child's Q entry is 0, so adding UNVISITED_Q times 1 there (and times 0
    # elsewhere) is exactly `where(n1 > 1, q, unvisited_q)`, at a fraction of where's cost
    # on the CPU.
    unvisited = (2 - n1).clamp_(min=0)
    score = torch.addcmul(q, unvisited, own[:, UNVISITED_Q:]) + prior * (own[:, EXPLORE : EXPLORE + 1] / n1)
    return score.argmax(1)
