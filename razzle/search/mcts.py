"""Batched PUCT search: B games searched in lockstep, one evaluator call per simulation step.

Each simulation step descends every game's tree at once (a loop over depth, vectorised
over games), expands one leaf per game with a single batched `step` of the rules engine,
evaluates all new leaves in one evaluator call and backs the values up along all paths
with one scatter-add.

Signs through pass chains: a pass keeps the same side to move, so the value of a leaf is
credited to an ancestor's statistics with sign +1 when the ancestor's `mover` is the
leaf's side to move and -1 otherwise, which is the product of the edge signs
(+1 same side continues, -1 side changes) along the way down.

Repetition: nodes keep no history. A new leaf's occurrence count is the number of equal
keys in the root's history (turns up to the root's) plus the equal turn-start keys on its
path, plus itself when it starts a turn; the third occurrence is a draw, exactly as the
engine rules. The turn limit and "no legal action" come from the engine's own `step`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from razzle.game.engine import repetition_key, step
from razzle.game.state import NUM_SLOTS, State
from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator
from razzle.search.streams import check_seeds, dirichlet_noise, tie_break_keys
from razzle.search.tree import OWN_SIGN, VALUE_SUM, VISITS, Tree

NO_ACTION = -1
# Evaluate the whole batch of leaves when at least this share of them needs it.
FULL_BATCH_FRACTION = 0.9
# Relative size of the prior jitter that breaks ties (keys are below 2**31).
TIE_JITTER = 1e-4 / 2**31


@dataclass
class SearchResult:
    """What a search of B games returns; slot-indexed tensors follow `actions`.

    actions       [B, 49] action id of each root slot (the root State's `actions`)
    legal         [B, 49] which root slots are legal
    visits        [B, 49] visit counts of the root's children: the policy target
    q             [B, 49] mean value of each child from the root side to move's view
                          (0 where unvisited)
    prior         [B, 49] the evaluator's raw prior at the root (no noise): with
                          `visits` it gives the difficulty target KL(pi || prior)
    root_value    [B]     mean value of the root from its side to move's view
    network_value [B]     the evaluator's value of the root
    pv            [B, L]  principal variation (most visited line) as action ids,
                          NO_ACTION after its end
    done          [B]     games that were already over (nothing searched)
    """

    actions: torch.Tensor
    legal: torch.Tensor
    visits: torch.Tensor
    q: torch.Tensor
    prior: torch.Tensor
    root_value: torch.Tensor
    network_value: torch.Tensor
    pv: torch.Tensor
    done: torch.Tensor

    def to(self, device: torch.device | str) -> SearchResult:
        return SearchResult(**{name: getattr(self, name).to(device) for name in self.__dataclass_fields__})

    def index(self, idx: torch.Tensor | slice | int) -> SearchResult:
        """Select games, keeping the batch dimension (as `State.index`)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return SearchResult(**{name: getattr(self, name)[idx] for name in self.__dataclass_fields__})

    @property
    def policy(self) -> torch.Tensor:
        """[B, 49] visit distribution (zeros for finished games)."""
        total = self.visits.sum(1, keepdim=True)
        return self.visits / total.clamp(min=1)


def terminal_value(state: State) -> torch.Tensor:
    """[B] value of finished games from their side to move's view: win +1, loss -1, draw 0.

    After a winning pass the winner is still the side to move, so a mid-chain win is +1."""
    won = (state.winner == state.to_move).float()
    return torch.where(state.winner < 0, 0.0, 2 * won - 1)


def _condense_history(leaves: State, key: torch.Tensor, occurrences: torch.Tensor) -> None:
    """The history the evaluator sees at a leaf: its turn-start key as often as it has
    occurred, at most 3 times (see `Evaluator`); in place."""
    shown = torch.arange(3, device=key.device) < occurrences.clamp(max=3).unsqueeze(1)
    leaves.history = torch.where(shown, key.unsqueeze(1), -1)


def _slot_prior(logits: torch.Tensor, state: State) -> torch.Tensor:
    """[B, 49] softmax of the logits over each position's legal slots (0 elsewhere; NaN
    for a position with no legal slot)."""
    at_slots = logits.gather(1, state.actions)
    return torch.where(state.legal, at_slots, float("-inf")).softmax(1)


class MCTS:
    """PUCT over many games at once: `MCTS(evaluator, config).search(state, seeds)`."""

    def __init__(self, evaluator: Evaluator, config: SearchConfig | None = None, fixed_shape: bool = False):
        """fixed_shape: run the fixed-shape simulation of `config.compile` without
        compiling it (for debugging it; `config.compile` implies it)."""
        self.evaluator = evaluator
        self.config = config or SearchConfig()
        self.fixed_shape = fixed_shape or self.config.compile

    @torch.no_grad()
    def search(self, state: State, seeds: torch.Tensor | None = None, root_noise: bool = False) -> SearchResult:
        """Search each game of `state` with `config.simulations` simulations.

        seeds: one int64 per game in [0, 2**62) for tie-breaking and root noise; a game's
        result depends only on its position, its seed and the evaluator, never on the
        other games in the batch. root_noise: mix Dirichlet noise into the root prior
        (self-play).
        """
        run = self.start(state, seeds, root_noise)
        for _ in range(self.config.simulations):
            run.simulate()
        return run.result()

    @torch.no_grad()
    def start(self, state: State, seeds: torch.Tensor | None = None, root_noise: bool = False) -> SearchRun:
        """Evaluate the roots and return the search, for callers that drive the
        simulations themselves (progress display, inspecting the tree)."""
        B, device = state.batch_size, state.device
        seeds = torch.zeros(B, dtype=torch.int64, device=device) if seeds is None else check_seeds(seeds, B)
        return SearchRun(self, state, seeds.to(device), root_noise)


class SearchRun:
    """One search of a batch: the tree plus per-game bookkeeping. Each `simulate()` adds
    one node per unfinished game (at most `config.simulations` of them)."""

    def __init__(self, mcts: MCTS, root: State, seeds: torch.Tensor, root_noise: bool):
        self.config = config = mcts.config
        self.evaluator = mcts.evaluator
        self.fixed_shape = mcts.fixed_shape
        self.seeds = seeds
        self.tree = tree = Tree(root, config.simulations + 1)
        self.active = ~root.done
        self.next_free = torch.ones_like(seeds)
        self.simulations_done = 0
        self._evaluated = int(self.active.sum())  # positions whose evaluation was used
        self._evaluated_on_device = torch.zeros((), dtype=torch.long, device=seeds.device)
        self.height = 0  # of the tree: the deepest node's depth (the fixed-shape descent)
        self._steps: _FixedSteps | None = None
        # Turn-start keys of the game so far (entries past the root's turn ignored).
        turns = torch.arange(root.history.shape[1], device=root.device)
        self.root_history = torch.where(turns <= root.turn.unsqueeze(1), root.history, -1)

        logits, value = self.evaluator(root)
        self.root_prior = _slot_prior(logits, root).nan_to_num(0.0)
        self.network_value = value.float()
        prior = self.root_prior
        if root_noise:
            noise = dirichlet_noise(seeds, root.legal, config.dirichlet_alpha)
            prior = (1 - config.dirichlet_epsilon) * prior + config.dirichlet_epsilon * noise
        leaf_value = torch.where(root.done, terminal_value(root), self.network_value)
        rows = tree.base
        tree.write(
            rows,
            root,
            mover=root.to_move,
            own_sign=torch.ones_like(leaf_value),
            leaf_value=leaf_value,
            prior=self._scaled(prior, root.legal, torch.zeros_like(seeds)),
            key=torch.where(root.mid_chain, -1, repetition_key(root)),
        )
        tree.stats[rows, VISITS] = 1.0
        tree.stats[rows, VALUE_SUM] = leaf_value

    @property
    def evaluations(self) -> int:
        """Positions whose evaluation the search used (roots included)."""
        return self._evaluated + int(self._evaluated_on_device)

    def _scaled(self, prior: torch.Tensor, legal: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """The stored prior: c_puct * prior with a tiny per-game pseudo-random jitter (it
        breaks ties between equal children reproducibly), -inf at illegal slots."""
        jitter = 1 + TIE_JITTER * tie_break_keys(self.seeds, nodes, NUM_SLOTS)
        return torch.where(legal, prior * jitter * self.config.c_puct, float("-inf"))

    @torch.no_grad()
    def simulate(self) -> None:
        if self.simulations_done == self.config.simulations:
            raise RuntimeError(f"the tree holds {self.config.simulations} simulations; this search is complete")
        self.simulations_done += 1
        if self.fixed_shape:
            self._simulate_fixed()
            return
        path, leaf, parent, slot, expand = self._descend()
        new_rows, value = self._expand(path, parent, slot, expand)
        self._back_up_leaves(path, leaf, expand, new_rows, value)

    def _simulate_fixed(self) -> None:
        """One simulation in fixed shapes: every game takes part in every step, masked, so
        there is no data-dependent shape; with `config.compile` the pieces run compiled.
        The descent takes `height + 1` levels, the tree's height read once per simulation.
        The same tree, visits and values as the eager path for the same seeds (with a
        network, up to the float rounding of evaluating the whole batch every time)."""
        tree, steps = self.tree, self._fixed_pieces()
        B = tree.batch_size
        path = self._path
        path.copy_(tree.null.unsqueeze(1).expand_as(path))
        path[:, 0] = torch.where(self.active, tree.base, tree.null)
        cur, going = tree.base, self.active
        leaf, parent = tree.base.clone(), tree.sink
        slot, levels = torch.zeros_like(leaf), torch.zeros_like(leaf)
        expand = torch.zeros_like(self.active)
        for level in range(self.height + 1):
            cur, going, leaf, parent, slot, expand, levels = steps.walk(
                tree.child, tree.stats, tree.prior, tree.terminal, tree.null, cur, going, leaf, parent, slot,
                expand, levels, path, self._columns[level + 1 : level + 2], self.config.fpu_reduction,
            )
        child, mover, key, needed = steps.prepare(self, path, parent, slot, expand)
        logits, value = self.evaluator(child)
        self._evaluated_on_device += needed.sum()
        steps.create(self, path, leaf, parent, slot, expand, child, mover, key, logits, value.float())
        self.height = max(self.height, int(torch.where(expand, levels, 0).max()) if B else 0)

    def _fixed_pieces(self) -> _FixedSteps:
        if self._steps is None:
            self._steps = _fixed_steps(self.config.compile)
            self._path = torch.empty(self.tree.batch_size, self.config.simulations + 2, dtype=torch.long,
                                     device=self.seeds.device)
            self._columns = torch.arange(self.config.simulations + 2, device=self.seeds.device)
        return self._steps

    def _prepare_fixed(self, path, parent, slot, expand):
        """The leaves to evaluate: step the chosen slots and settle repetition."""
        before, child, key, occurrences = self._step_leaves(path, parent, slot, expand)
        _condense_history(child, key, occurrences)
        return child, before.to_move, key, expand & ~child.done

    def _create_fixed(self, path, leaf, parent, slot, expand, child, mover, key, logits, value):
        """Create the new nodes from the evaluation and back the values up."""
        prior = _slot_prior(logits, child)
        value = torch.where(child.done, terminal_value(child), value)
        new_rows = self._write_nodes(parent, slot, expand, child, mover, key, prior, value)
        self._back_up_leaves(path, leaf, expand, new_rows, value)

    def _descend(self):
        """Walk every active game from its root to a leaf by PUCT.

        Returns the path [B, D] (rows, the game's NULL after its end), the row where
        each walk stopped, and for walks that stopped at an unexpanded slot: that slot's
        parent row and slot index (`expand` marks them; the others reached a finished
        position, or their game is over). Each depth works only on the games still
        descending: most walks are short, a few are long."""
        tree = self.tree
        games = self.active.nonzero().squeeze(1)
        cur = tree.base.index_select(0, games)
        path = [torch.where(self.active, tree.base, tree.null)]
        leaf, parent = tree.base.clone(), tree.sink.clone()
        slot = torch.zeros_like(leaf)
        expand = torch.zeros_like(self.active)
        while games.numel():
            choice = self._select(cur)
            nxt = tree.child.index_select(0, cur).gather(1, choice.unsqueeze(1)).squeeze(1)
            fresh = nxt == tree.null.index_select(0, games)
            parent.index_copy_(0, games, cur)
            slot.index_copy_(0, games, choice)
            expand.index_copy_(0, games, fresh)
            moved_to = torch.where(fresh, cur, nxt)
            leaf.index_copy_(0, games, moved_to)
            path.append(tree.null.index_copy(0, games, torch.where(fresh, tree.null.index_select(0, games), nxt)))
            going_on = (~fresh & ~tree.terminal.index_select(0, moved_to)).nonzero().squeeze(1)
            games, cur = games.index_select(0, going_on), moved_to.index_select(0, going_on)
        return torch.stack(path, 1), leaf, parent, slot, expand

    def _select(self, rows: torch.Tensor) -> torch.Tensor:
        """PUCT choice [n] (a slot) at each node row: argmax of Q + c P sqrt(N) / (1 + n).

        Unvisited children are valued at the parent's own value minus fpu_reduction;
        illegal slots have prior -inf; ties are broken by the prior's jitter."""
        tree = self.tree
        children = tree.child.index_select(0, rows)
        own = tree.stats.index_select(0, rows)
        below = tree.stats.index_select(0, children.view(-1)).view(len(rows), NUM_SLOTS, 3)
        n, w = below[..., VISITS], below[..., VALUE_SUM]
        parent_n = own[:, VISITS : VISITS + 1]
        own_value = own[:, VALUE_SUM : VALUE_SUM + 1] * own[:, OWN_SIGN : OWN_SIGN + 1] / parent_n
        q = torch.where(n > 0, w / n.clamp(min=1), own_value - self.config.fpu_reduction)
        score = q + tree.prior.index_select(0, rows) * (parent_n.sqrt() / (1 + n))
        return score.argmax(1)

    def _expand(self, path, parent, slot, expand):
        """Step the chosen slots, settle repetition, evaluate, and create the new nodes."""
        before, child, key, occurrences = self._step_leaves(path, parent, slot, expand)
        prior, value = self._evaluate(child, key, occurrences, expand & ~child.done)
        value = torch.where(child.done, terminal_value(child), value)
        return self._write_nodes(parent, slot, expand, child, before.to_move, key, prior, value), value

    def _step_leaves(self, path, parent, slot, expand):
        """Each expanding game's position before its chosen slot, the leaf it steps to,
        and the leaf's turn-start key and occurrence count (repetition settled)."""
        tree = self.tree
        before = tree.position(torch.where(expand, parent, tree.base))
        before.done = before.done | ~expand
        action = before.actions.gather(1, slot.unsqueeze(1)).squeeze(1)
        child = step(before, action)
        key, occurrences = self._repetition(path, before, child, expand)
        return before, child, key, occurrences

    def _back_up_leaves(self, path, leaf, expand, new_rows, value) -> None:
        """Back up each new node's value, or the stored value of a leaf not expanded (a
        finished position), along its path extended by the new node."""
        tree = self.tree
        leaf = torch.where(expand, new_rows, leaf)
        value = torch.where(expand, value, tree.leaf_value.index_select(0, leaf))
        full = torch.cat([path, torch.where(expand, new_rows, tree.null).unsqueeze(1)], 1)
        self._backup(full, leaf, value)

    def _repetition(self, path, before: State, child: State, expand):
        """The new leaves' turn-start keys and occurrence counts; a third occurrence ends
        the leaf's game (in place on `child`)."""
        turn_over = expand & (child.turn != before.turn)
        # With a one-column history, `step` records the new turn-start key in column 0.
        key = torch.where(turn_over, child.history[:, 0], -1)
        earlier = (self.root_history == key.unsqueeze(1)).sum(1)
        on_path = self.tree.key.index_select(0, path[:, 1:].reshape(-1)).view(len(key), -1)
        occurrences = torch.where(turn_over, earlier + (on_path == key.unsqueeze(1)).sum(1) + 1, 0)
        if child.rules.repetition_draw:
            child.done = child.done | (turn_over & (occurrences >= 3))
            child.legal = child.legal & ~child.done.unsqueeze(1)
        return key, occurrences

    def _write_nodes(self, parent, slot, expand, child: State, mover, key, prior, value) -> torch.Tensor:
        """The new node of each expanding game (the others write to their SINK); its rows."""
        tree = self.tree
        nodes = self.next_free
        rows = torch.where(expand, tree.base + nodes, tree.sink)
        self.next_free = nodes + expand.long()
        tree.write(
            rows,
            child,
            mover=mover,
            own_sign=torch.where(child.to_move == mover, 1.0, -1.0),
            leaf_value=value,
            prior=self._scaled(prior, child.legal, nodes),
            key=key,
        )
        edge = torch.where(expand, parent * NUM_SLOTS + slot, tree.sink * NUM_SLOTS)
        tree.child.view(-1).index_copy_(0, edge, rows)
        return rows

    def _evaluate(self, leaves: State, key, occurrences, needed):
        """Prior [B, 49] and value [B] of the leaves that need the evaluator (one call).

        Leaves get a condensed history: their key as often as it has occurred (see
        `Evaluator`). Usually nearly all leaves are new and unfinished, and the whole
        batch goes to the evaluator (a fixed shape, no gathering); when many are not,
        only those that need it do."""
        B = leaves.batch_size
        _condense_history(leaves, key, occurrences)
        count = int(needed.sum())
        self._evaluated += count
        if count >= FULL_BATCH_FRACTION * B:
            logits, value = self.evaluator(leaves)
            return _slot_prior(logits, leaves), value.float()
        prior = torch.zeros(B, NUM_SLOTS, device=key.device)
        values = torch.zeros(B, device=key.device)
        if count:
            games = needed.nonzero().squeeze(1)
            subset = leaves.index(games)
            logits, value = self.evaluator(subset)
            prior[games] = _slot_prior(logits, subset)
            values[games] = value.float()
        return prior, values

    def _backup(self, path: torch.Tensor, leaf: torch.Tensor, value: torch.Tensor) -> None:
        """Add one visit and the signed leaf value to every node on each path."""
        tree = self.tree
        leaf_side = tree.field("to_move", leaf)
        flat = path.reshape(-1)
        valid = (path != tree.null.unsqueeze(1)).float()
        same_side = tree.mover.index_select(0, flat).view(path.shape) == leaf_side.unsqueeze(1)
        signed = valid * torch.where(same_side, value.unsqueeze(1), -value.unsqueeze(1))
        tree.stats.index_add_(0, flat, torch.stack([valid, signed, torch.zeros_like(valid)], 2).view(-1, 3))

    def result(self) -> SearchResult:
        tree, root = self.tree, self.tree.base
        children = tree.child.index_select(0, root)
        below = tree.stats.index_select(0, children.view(-1)).view(*children.shape, 3)
        n, w = below[..., VISITS], below[..., VALUE_SUM]
        own = tree.stats.index_select(0, root)
        return SearchResult(
            actions=tree.field("actions", root),
            legal=tree.field("legal", root),
            visits=n,
            q=torch.where(n > 0, w / n.clamp(min=1), 0.0),
            prior=self.root_prior,
            root_value=own[:, VALUE_SUM] / own[:, VISITS],
            network_value=self.network_value,
            pv=self._principal_variation(),
            done=~self.active,
        )

    def _principal_variation(self) -> torch.Tensor:
        tree = self.tree
        cur, alive = tree.base, self.active
        line = []
        for _ in range(self.config.pv_length):
            children = tree.child.index_select(0, cur)
            n = tree.stats[:, VISITS].index_select(0, children.view(-1)).view(children.shape)
            best = n.argmax(1, keepdim=True)
            alive = alive & (n.gather(1, best).squeeze(1) > 0)
            action = tree.field("actions", cur).gather(1, best).squeeze(1)
            line.append(torch.where(alive, action, NO_ACTION))
            cur = torch.where(alive, children.gather(1, best).squeeze(1), cur)
        if not line:
            return torch.empty(tree.batch_size, 0, dtype=torch.int64, device=cur.device)
        return torch.stack(line, 1)


def _walk_level(child, stats, prior, terminal, null, cur, going, leaf, parent, slot, expand, levels, path, column, fpu):
    """One level of the fixed-shape descent for every game (those no longer descending
    keep their values): the PUCT choice at `cur`, and the path's entry at `column`."""
    children = child.index_select(0, cur)
    own = stats.index_select(0, cur)
    below = stats.index_select(0, children.view(-1)).view(len(cur), NUM_SLOTS, 3)
    n, w = below[..., VISITS], below[..., VALUE_SUM]
    parent_n = own[:, VISITS : VISITS + 1]
    own_value = own[:, VALUE_SUM : VALUE_SUM + 1] * own[:, OWN_SIGN : OWN_SIGN + 1] / parent_n
    q = torch.where(n > 0, w / n.clamp(min=1), own_value - fpu)
    choice = (q + prior.index_select(0, cur) * (parent_n.sqrt() / (1 + n))).argmax(1)
    nxt = children.gather(1, choice.unsqueeze(1)).squeeze(1)
    fresh = nxt == null
    moved_to = torch.where(fresh, cur, nxt)
    path.index_copy_(1, column, torch.where(going & ~fresh, nxt, null).unsqueeze(1))
    parent = torch.where(going, cur, parent)
    slot = torch.where(going, choice, slot)
    expand = torch.where(going, fresh, expand)
    leaf = torch.where(going, moved_to, leaf)
    levels = levels + going.long()
    going = going & ~fresh & ~terminal.index_select(0, moved_to)
    return torch.where(going, moved_to, cur), going, leaf, parent, slot, expand, levels


@dataclass(frozen=True)
class _FixedSteps:
    walk: object
    prepare: object
    create: object


_FIXED_STEPS: dict[bool, _FixedSteps] = {}


def _fixed_steps(compiled: bool) -> _FixedSteps:
    """The pieces of a fixed-shape simulation, compiled or not, made once per process
    (every search shares torch.compile's cache)."""
    if compiled not in _FIXED_STEPS:
        pieces = (_walk_level, SearchRun._prepare_fixed, SearchRun._create_fixed)
        if compiled:
            pieces = tuple(torch.compile(piece, fullgraph=True, dynamic=False) for piece in pieces)
        _FIXED_STEPS[compiled] = _FixedSteps(*pieces)
    return _FIXED_STEPS[compiled]
