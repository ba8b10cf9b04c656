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

import logging
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import torch

from razzle.game.engine import repetition_key, step
from razzle.game.state import NUM_SLOTS, State
from razzle.search.capture import CapturedSimulations, graph_capture, unheld
from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator
from razzle.search.streams import TieBreakKeys, check_seeds, dirichlet_noise
from razzle.search.tree import EDGE_ROWS, N1, Q, W, Tree, puct_choice

log = logging.getLogger(__name__)

NO_ACTION = -1
# Evaluate the whole batch of leaves when at least this share of them needs it.
FULL_BATCH_FRACTION = 0.9
# Relative size of the prior jitter that breaks ties (keys are below 2**31).
TIE_JITTER = 1e-4 / 2**31
# Levels of the fixed-shape descent per call of its (compiled) walk: a few calls per
# simulation instead of one per level, at the price of the last call's levels past the
# deepest walk, which cost little.
WALK_LEVELS = 8
# Simulations whose deepest new node the fixed-shape search does not wait for: it walks
# that many levels more instead, and the device runs ahead of the host.
HEIGHT_LAG = 2
# From this many path entries (batch x levels walked), the CPU's fixed-shape backup drops
# the NULL entries first: below it, the three eager operations that do so cost more than
# the compiled backup saves (measured: batch 64 with 8-24 levels loses, batch 1024 gains).
COMPACT_BELOW = 4096
# From this batch size the CPU's first walk call is split in two, the second half taking
# only the games still descending: the mean walk is 3.3 levels deep, but the first call
# does PUCT for every game at all 8 of its levels. Below it, the extra call costs more
# than it saves (compiled, uniform evaluator: batch 64 0.90-0.94x, 128 1.13x, 256
# 1.17-1.27x, 1024 1.04-1.12x), and the prepared descents below beat both at batch 128
# (uniform 1.03x, tiny network's share 0.860 against 0.849, medians of five alternating
# pairs); at 192 uniform search is 0.94-0.96x, tiny's share 0.860-0.870 against
# 0.858-0.859 (a network's search is what self-play runs); at 256 uniform 0.84-0.90x,
# tiny's share the same.
SPLIT_FIRST_WALK = 256
# Below it, the node creation goes on to prepare the next simulation (`_create_ahead`): its
# second call's levels take the games still descending after the first call's, at first up
# to one in this many of the batch (at batch 64, 8 games: all of them in 98% of 64-simulation
# searches), twice as many after each simulation that found some left out.
AHEAD_SHARE = 8


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
        self._spare: list[dict[str, torch.Tensor]] = []
        self._captured: CapturedSimulations | None = None
        self.evaluations = 0  # positions whose evaluation the searches used, over all searches

    @torch.inference_mode()
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
        result = run.result()
        self.evaluations += run.evaluations
        self.recycle(run)
        return result

    @torch.inference_mode()
    def start(self, state: State, seeds: torch.Tensor | None = None, root_noise: bool = False) -> SearchRun:
        """Evaluate the roots and return the search, for callers that drive the
        simulations themselves (progress display, inspecting the tree)."""
        B, device = state.batch_size, state.device
        seeds = torch.zeros(B, dtype=torch.int64, device=device) if seeds is None else check_seeds(seeds, B)
        captured = self._captured_simulations(state)
        if captured is not None:
            spare = captured.tree_storage
        else:
            spare = self._spare.pop() if self._spare else None
        return SearchRun(self, state, seeds.to(device), root_noise, spare, captured)

    def _captured_simulations(self, state: State) -> CapturedSimulations | None:
        """Where this search's simulations are captured: the previous search's captures
        when the batch has the same shape, new ones otherwise; None when not capturing."""
        signature = (state.batch_size, state.device, state.history.shape[1], state.rules)
        if self._captured is None or self._captured.signature != signature:
            capture = graph_capture(self.config, state.device)
            self._captured = None if capture is None else CapturedSimulations(capture, signature)
        return self._captured

    def recycle(self, run: SearchRun) -> None:
        """Hand a finished run's tree tables to the next search, which reuses them instead
        of allocating (and the system zeroing) tens of MB; `run` must not be used after."""
        self._spare[:] = [run.tree.storage]


class SearchRun:
    """One search of a batch: the tree plus per-game bookkeeping. Each `simulate()` adds
    one node per unfinished game (at most `config.simulations` of them)."""

    def __init__(
        self, mcts: MCTS, root: State, seeds: torch.Tensor, root_noise: bool,
        spare: dict[str, torch.Tensor] | None = None, captured: CapturedSimulations | None = None,
    ):
        """captured: where the simulations are captured (see `CapturedSimulations`); the
        tensors they touch are then kept there, at the addresses of the captures."""
        self.config = config = mcts.config
        self.evaluator = mcts.evaluator
        self._captured = captured
        self.fixed_shape = mcts.fixed_shape or captured is not None
        self._hold = hold = unheld if captured is None else captured.hold
        self.seeds = seeds
        self._tie_break = TieBreakKeys(seeds, NUM_SLOTS, hold)
        self.tree = tree = Tree(root, config.simulations + 1, spare, hold)
        if captured is not None:
            captured.search, captured.tree_storage = self, tree.storage
        self.active = hold("active", ~root.done)
        # The roots' entries in every backup: the active games' alone (eager), or every
        # game's with NULL for the finished ones (fixed shapes).
        self._games = hold("games", torch.arange(root.batch_size, device=root.device))
        self._root_games = self._games if self.fixed_shape else self.active.nonzero().squeeze(1)
        self._roots = hold("roots", torch.where(self.active, tree.base, tree.null).index_select(0, self._root_games))
        self.next_free = hold("next_free", torch.ones_like(seeds))
        self.simulations_done = 0
        self._evaluated = int(self.active.sum())  # positions whose evaluation was used
        self._evaluated_on_device = hold("evaluated", torch.zeros((), dtype=torch.long, device=seeds.device))
        self._deepest = hold("deepest", torch.zeros((), dtype=torch.long, device=seeds.device))
        self._height = 0  # the tree's as of the simulations before `_pending_depths`
        self._pending_depths: deque = deque()
        self._steps: _FixedSteps | None = None
        self._prepared: tuple | None = None  # the next simulation's descent and leaves
        # Turn-start keys of the game so far (entries past the root's turn ignored), sorted
        # so that a key's occurrences are counted by two binary searches.
        turns = torch.arange(root.history.shape[1], device=root.device)
        self.root_history = hold(
            "root_history", torch.where(turns <= root.turn.unsqueeze(1), root.history, -1).sort(1).values
        )

        logits, value = self.evaluator(root)
        self.root_prior = _slot_prior(logits, root).nan_to_num(0.0)
        self.network_value = value.float()
        prior = self.root_prior
        if root_noise:
            noise = dirichlet_noise(seeds, root.legal, config.dirichlet_alpha)
            prior = (1 - config.dirichlet_epsilon) * prior + config.dirichlet_epsilon * noise
        leaf_value = torch.where(root.done, terminal_value(root), self.network_value)
        rows = tree.base
        edge = tree.above * (EDGE_ROWS * NUM_SLOTS)
        tree.write(
            rows,
            root,
            edge=edge,
            mover=root.to_move,
            sign=torch.ones_like(leaf_value),
            leaf_value=leaf_value,
            prior=self._scaled(prior, root.legal, torch.zeros_like(seeds)),
            key=torch.where(root.mid_chain, -1, repetition_key(root)),
        )
        visits = torch.ones_like(leaf_value)
        tree.set_edges(edge, (N1, W, Q), (visits + 1, leaf_value, leaf_value))
        tree.refresh_scores(rows, visits, leaf_value, config.fpu_reduction)
        if not self.fixed_shape:
            tree.refresh_choices(self._roots)

    @property
    def height(self) -> int:
        """Depth of the tree's deepest node (kept by the fixed-shape search)."""
        return self._height_bound(lag=0)

    def _height_bound(self, lag: int = HEIGHT_LAG) -> int:
        """An upper bound of the tree's height that waits for no more than the deepest
        new node of simulations over `lag` ago: the height the host has received plus one
        level for each simulation whose depth is still on its way (one adds at most one
        level). On the CPU every depth is there at once and the bound is the height."""
        pending = self._pending_depths
        while pending:
            depth, arrived = pending[0]
            if arrived is not None:
                if len(pending) <= lag and not arrived.query():
                    break
                arrived.synchronize()
            pending.popleft()
            self._height = max(self._height, int(depth))
        return self._height + len(pending)

    @property
    def evaluations(self) -> int:
        """Positions whose evaluation the search used (roots included)."""
        return self._evaluated + int(self._evaluated_on_device)

    def _scaled(self, prior: torch.Tensor, legal: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """The stored prior: c_puct * prior with a tiny per-game pseudo-random jitter (it
        breaks ties between equal children reproducibly), -inf at illegal slots."""
        jitter = 1 + TIE_JITTER * self._tie_break(nodes)
        return torch.where(legal, prior * jitter * self.config.c_puct, float("-inf"))

    @torch.inference_mode()
    def simulate(self) -> None:
        self._check_tables()
        if self.simulations_done == self.config.simulations:
            raise RuntimeError(f"the tree holds {self.config.simulations} simulations; this search is complete")
        self.simulations_done += 1
        if self.fixed_shape:
            self._simulate_fixed()
            return
        below, leaf, parent, slot, expand = self._descend()
        new_rows, value = self._expand(below, parent, slot, expand)
        self._back_up_leaves(below, leaf, expand, new_rows, value)

    def _simulate_fixed(self) -> None:
        """One simulation in fixed shapes: every game takes part in every step, masked, so
        there is no data-dependent shape; with `config.compile` the pieces run compiled.
        The descent covers one level more than a bound of the tree's height, which the
        host learns without waiting for the latest simulations (`HEIGHT_LAG`), in
        `WALK_LEVELS` levels a call, the last call's by `prepare`, which also steps to the
        leaves. Where the host reads counts, below `SPLIT_FIRST_WALK` games, the node
        creation goes on to prepare the next simulation (`_create_ahead`): when its walks
        all ended, that simulation is the network call and one compiled call. Elsewhere the
        node creation walks the next simulation's first call's levels (`_first_walk`); on
        the CPU the calls after the first take only the games still descending (from
        `SPLIT_FIRST_WALK` games the first call walks half its levels), and the backup of a
        large batch only the nodes walked.
        Captured simulations (`config.cuda_graphs`) are replayed instead, one capture per
        number of calls.
        The same tree, visits and values as the eager path for the same seeds (with a
        network, up to the float rounding of evaluating the whole batch every time)."""
        steps = self._fixed_pieces()
        if self.simulations_done == 1 and not self._prepares_ahead:  # no node creation walked them
            self._walk_first_levels(steps.walk)
        # Levels 1 .. bound + 1, and at least one call after a first walk.
        calls = self._height_bound() // WALK_LEVELS + 1
        if not self._prepares_ahead:
            calls = max(calls, self._first_levels // WALK_LEVELS + 1)
        if self._captured is None:
            self._fixed_simulation(steps, calls)
        else:
            self._captured.run(calls, lambda: self._fixed_simulation(steps, calls))
        self._pending_depths.append(_copy_to_host(self._deepest))

    def _fixed_simulation(self, steps: _FixedSteps, calls: int) -> None:
        """The device's part of a fixed-shape simulation: no host synchronisation (but on
        the CPU, uncaptured, where reading a count is free), no tensor made here outlives
        it (what lasts is written in place), so it can be captured and replayed."""
        walk, child, mover, key, reach = self._fixed_descent(steps, calls)
        logits, value = self.evaluator(child)
        created = (self, walk, child, mover, key, logits, value.float(), reach, self._walked_below(reach, walk))
        if self._prepares_ahead:
            self._prepared = steps.create_ahead(*created, self._reach(2), self._onward)
        else:
            steps.create(*created)

    def _reach(self, calls: int) -> int:
        """The path columns the walks of `calls` calls can reach: backup and repetition
        cover these alone."""
        return min(calls * WALK_LEVELS, self.config.simulations + 1)

    def _fixed_descent(self, steps: _FixedSteps, calls: int):
        """This simulation's descent and leaves, as (walk, leaves, the side to move before
        them, their keys, reach): the prepared ones when every walk ended there, else walked
        over `calls` calls' levels from the first walk (or from the roots), the last call's
        levels by `prepare`."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            going, levels = prepared[0].going, prepared[0].levels
            if not going.any():
                return (*prepared, self._reach(2))
            if (going & (levels == WALK_LEVELS)).any():  # left out of the second call
                self._onward = min(2 * self._onward, self.tree.batch_size)
        walk, done = (self._walk_start, 0) if self._prepares_ahead else (self._first_walk, self._first_levels)
        ends = range(WALK_LEVELS, (calls + 1) * WALK_LEVELS, WALK_LEVELS)
        columns = [self._columns[max(end - WALK_LEVELS, done) : end] for end in ends if end > done]
        reach = self._reach(calls)
        games = self._descending(walk.going, self._games)
        for levels in columns[:-1]:
            walk = steps.walk(*self._walk_tables(), *walk, self._path, levels, games)
            games = self._descending(walk.going, games)
        return (*steps.prepare(self, walk, columns[-1], reach, games), reach)

    def _walk_from_roots(self, walk_levels, levels: int) -> _Walk:
        """The next simulation's first `levels` levels for every game, from the roots."""
        return walk_levels(*self._walk_tables(), *self._walk_start, self._path, self._columns[:levels], self._games)

    def _walk_first_levels(self, walk_levels) -> None:
        """The next simulation's first `_first_levels` levels, into the held `_first_walk`
        (where the next simulation reads them)."""
        for held, value in zip(self._first_walk, self._walk_from_roots(walk_levels, self._first_levels)):
            held.copy_(value)

    @property
    def _reads_counts(self) -> bool:
        """Whether the host reads counts during a fixed-shape simulation: on the CPU,
        uncaptured, where it costs nothing, so that the pieces take only the games and
        path entries that need work; elsewhere the host reads nothing."""
        return self._captured is None and self.seeds.device.type == "cpu"

    def _descending(self, going: torch.Tensor, games: torch.Tensor) -> torch.Tensor:
        """The games the next walk call takes: where the host reads counts, those still
        descending (most walks end within a few levels, the deepest go on past 20: at
        batch 1024, 45 of 1,024 games on average after 8 levels), at least two, the rest
        made up of finished walks, which a walk leaves as they are (dynamo would compile
        sizes 0 and 1 apart); elsewhere every game."""
        if not self._reads_counts:
            return games
        descending, fewest = going.nonzero().squeeze(1), min(2, len(going))
        if len(descending) >= fewest:
            return descending
        return torch.argsort(~going, stable=True)[:fewest]

    def _walked_below(self, reach: int, walk: _Walk):
        """Where the host reads counts, from `COMPACT_BELOW` entries: the nodes below the
        root on this simulation's walks (see `_below`) without the NULL entries past the
        walks' ends (three quarters of them at batch 1024); else None (`_create_fixed`
        takes all `reach` levels)."""
        if not self._reads_counts or self.tree.batch_size * reach < COMPACT_BELOW:
            return None
        games, levels = self._on_path(reach, walk).nonzero().unbind(1)
        return self._path[games, levels], games

    def _fixed_pieces(self) -> _FixedSteps:
        if self._steps is None:
            self._steps = _fixed_steps(self.seeds.device.type if self.config.compile else None)
            # A column per level a walk can reach (from level 1), and spare columns for the
            # last call's levels past the deepest walk (never part of `below`; see `_on_path`).
            width = self.config.simulations + 1 + WALK_LEVELS
            hold, device = self._hold, self.seeds.device
            self._path = hold("path", torch.empty(self.tree.batch_size, width, dtype=torch.long, device=device))
            self._columns = hold("columns", torch.arange(width, device=device))
            # Walks at the roots, held: seven distinct tensors each, as every later call's
            # are, since dynamo guards on which inputs alias each other and would compile
            # each piece twice.
            base, active = self.tree.base, self.active
            starts = (base, active, base, base, torch.zeros_like(base), torch.zeros_like(active), torch.zeros_like(base))

            def held_walk(prefix: str) -> _Walk:
                return _Walk(*(hold(f"{prefix}.{name}", start.clone()) for name, start in zip(_Walk._fields, starts)))

            # Where every simulation's walk starts (the pieces never write to it).
            self._walk_start = held_walk("walk")
            split = self._reads_counts and self.tree.batch_size >= SPLIT_FIRST_WALK
            self._prepares_ahead = self._reads_counts and not split
            if self._prepares_ahead:
                self._onward = max(2, self.tree.batch_size // AHEAD_SHARE)  # see AHEAD_SHARE
            else:
                # Where its first walk call leaves its games: written by the node creation
                # before it (by the search's first simulation for itself); half a call where
                # the later ones take only the descending games of a large batch.
                self._first_walk = held_walk("first_walk")
                self._first_levels = WALK_LEVELS // 2 if split else WALK_LEVELS
        return self._steps

    def _walk_tables(self):
        """What `_walk_levels` reads of the tree."""
        tree = self.tree
        return tree.edges, tree.scores, tree.child, tree.terminal, tree.null

    def _on_path(self, reach: int, walk: _Walk) -> torch.Tensor:
        """[B, reach] which path entries (levels 1 to `reach`) hold a node below the root on
        this simulation's walks: the levels each walked, but the last where it stopped at an
        unexpanded slot (the entry is NULL there). The entries past a walk's end are left
        from earlier simulations: the path is never cleared."""
        return self._columns[:reach] < (walk.levels - walk.expand.long()).unsqueeze(1)

    def _below(self, reach: int, walk: _Walk):
        """The nodes below the root on this simulation's walks, levels 1 to `reach` (NULL
        past a walk's end), as (rows, their games)."""
        rows = torch.where(self._on_path(reach, walk), self._path[:, :reach], self.tree.null)
        return rows.reshape(-1), self._games.unsqueeze(1).expand_as(rows).reshape(-1)

    def _prepare_fixed(self, walk, columns, reach: int, games):
        """The descent's last levels (of the games `games`), then the leaves to evaluate:
        step the chosen slots and settle repetition (`reach`: the levels the walks can
        reach)."""
        walk = _walk_levels(*self._walk_tables(), *walk, self._path, columns, games)
        below = self._below(reach, walk)
        before, child, key, occurrences = self._step_leaves(below, walk.parent, walk.slot, walk.expand)
        _condense_history(child, key, occurrences)
        return walk, child, before.to_move, key

    def _create_fixed(self, walk, child, mover, key, logits, value, reach: int, walked):
        """Create the new nodes and back the values up (`_create_nodes`), then walk the next
        simulation's first levels."""
        self._create_nodes(walk, child, mover, key, logits, value, reach, walked)
        self._walk_first_levels(_walk_levels)

    def _create_ahead(
        self, walk, child, mover, key, logits, value, reach: int, walked, prepared_reach: int, onward: int
    ):
        """Create the new nodes and back the values up (`_create_nodes`), then prepare the
        next simulation: its descent over two calls' levels, the second taking the first
        `onward` games still descending (the others stay `going`: the host then walks
        afresh), and its leaves."""
        self._create_nodes(walk, child, mover, key, logits, value, reach, walked)
        first = self._walk_from_roots(_walk_levels, WALK_LEVELS)
        games = torch.argsort(~first.going, stable=True)[:onward]
        return self._prepare_fixed(first, self._columns[WALK_LEVELS : 2 * WALK_LEVELS], prepared_reach, games)

    def _create_nodes(self, walk, child, mover, key, logits, value, reach: int, walked) -> None:
        """Create the new nodes from the evaluation and back the values up along the
        walks (the nodes below the root: `walked`, or the `reach` levels' entries); keeps the
        count of evaluations used and the depth of the deepest new node."""
        below = self._below(reach, walk) if walked is None else walked
        expand = walk.expand
        prior = _slot_prior(logits, child)
        value = torch.where(child.done, terminal_value(child), value)
        new_rows = self._write_nodes(walk.parent, walk.slot, expand, child, mover, key, prior, value)
        self._back_up_leaves(below, walk.leaf, expand, new_rows, value)
        self._evaluated_on_device.add_((expand & ~child.done).sum())
        if len(expand):
            self._deepest.copy_(torch.where(expand, walk.levels, 0).amax())

    def _descend(self):
        """Walk every active game from its root to a leaf by PUCT.

        Returns the nodes below the root on each walk as (rows, their games), the row
        where each walk stopped, and for walks that stopped at an unexpanded slot: that
        slot's parent row and slot index (`expand` marks them; the others reached a
        finished position, or their game is over). Each depth works only on the games
        still descending (most walks are short, a few are long); what each game did at
        each depth is gathered into the outputs once, after the walk."""
        tree = self.tree
        games = self._root_games
        cur = self._roots
        levels = []
        while games.numel():
            nxt, going = tree.best_child.index_select(0, cur), tree.goes_on.index_select(0, cur)
            levels.append((games, cur, nxt, going))
            onward = going.nonzero().squeeze(1)
            games, cur = games.index_select(0, onward), nxt.index_select(0, onward)
        return self._walked(levels)

    def _walked(self, levels):
        """The descent's outputs from what each level recorded: (games, their node, the
        row its chosen slot leads to (NULL: unexpanded), whether they went on)."""
        tree = self.tree
        leaf, parent, slot = tree.base.clone(), tree.base.clone(), torch.zeros_like(tree.base)
        expand = torch.zeros_like(self.active)
        if not levels:
            return (tree.base[:0], tree.base[:0]), leaf, parent, slot, expand
        games, cur, nxt, going = (torch.cat(parts) for parts in zip(*levels))
        moved = (nxt != tree.null).nonzero().squeeze(1)
        below = (nxt.index_select(0, moved), games.index_select(0, moved))
        stop = (~going).nonzero().squeeze(1)
        games, cur, nxt = (t.index_select(0, stop) for t in (games, cur, nxt))
        fresh = nxt == tree.null
        parent.index_copy_(0, games, cur)
        slot.index_copy_(0, games, tree.best.index_select(0, cur))
        expand.index_copy_(0, games, fresh)
        leaf.index_copy_(0, games, torch.where(fresh, cur, nxt))
        return below, leaf, parent, slot, expand

    def _expand(self, below, parent, slot, expand):
        """Step the chosen slots, settle repetition, evaluate, and create the new nodes."""
        before, child, key, occurrences = self._step_leaves(below, parent, slot, expand)
        prior, value = self._evaluate(child, key, occurrences, expand & ~child.done)
        value = torch.where(child.done, terminal_value(child), value)
        return self._write_nodes(parent, slot, expand, child, before.to_move, key, prior, value), value

    def _step_leaves(self, below, parent, slot, expand):
        """Each expanding game's position before its chosen slot, the leaf it steps to,
        and the leaf's turn-start key and occurrence count (repetition settled)."""
        tree = self.tree
        before = tree.position(torch.where(expand, parent, tree.base))
        before.done = before.done | ~expand
        action = before.actions.gather(1, slot.unsqueeze(1)).squeeze(1)
        child = step(before, action)
        key, occurrences = self._repetition(below, before, child, expand)
        return before, child, key, occurrences

    def _back_up_leaves(self, below, leaf, expand, new_rows, value) -> None:
        """Back up each new node's value, or the stored value of a leaf not expanded (a
        finished position), along its walk: the root, the nodes below it, the new node."""
        tree = self.tree
        leaf = torch.where(expand, new_rows, leaf)
        value = torch.where(expand, value, tree.leaf_value.index_select(0, leaf))
        rows = torch.cat([self._roots, below[0], torch.where(expand, new_rows, tree.null)])
        games = torch.cat([self._root_games, below[1], self._games])
        self._backup(rows, games, leaf, value)
        if not self.fixed_shape:
            tree.refresh_choices(rows)

    def _repetition(self, below, before: State, child: State, expand):
        """The new leaves' turn-start keys and occurrence counts; a third occurrence ends
        the leaf's game (in place on `child`)."""
        turn_over = expand & (child.turn != before.turn)
        # With a one-column history, `step` records the new turn-start key in column 0.
        key = torch.where(turn_over, child.history[:, 0], -1)
        wanted, history = key.unsqueeze(1), self.root_history
        earlier = (torch.searchsorted(history, wanted, right=True) - torch.searchsorted(history, wanted)).squeeze(1)
        rows, games = below
        repeats = (self.tree.key.index_select(0, rows) == key.index_select(0, games)) & (rows != self.tree.null)
        # Summed as floats (exact for counts this small): inductor's CPU code runs an int64
        # index_add_ as an eager fallback.
        path_repeats = torch.zeros(len(key), device=key.device).index_add_(0, games, repeats.float()).long()
        occurrences = torch.where(turn_over, earlier + path_repeats + 1, 0)
        if child.rules.repetition_draw:
            child.done = child.done | (turn_over & (occurrences >= 3))
            child.legal = child.legal & ~child.done.unsqueeze(1)
        return key, occurrences

    def _write_nodes(self, parent, slot, expand, child: State, mover, key, prior, value) -> torch.Tensor:
        """The new node of each expanding game (the others write to NULL); its rows."""
        tree = self.tree
        nodes = self.next_free.clone()
        rows = torch.where(expand, tree.base + nodes, tree.null)
        self.next_free.add_(expand.long())
        block = EDGE_ROWS * NUM_SLOTS
        tree.write(
            rows,
            child,
            edge=torch.where(expand, parent * block + slot, tree.null * block),
            mover=mover,
            sign=torch.where(child.to_move == mover, 1.0, -1.0),
            leaf_value=value,
            prior=self._scaled(prior, child.legal, nodes),
            key=key,
        )
        tree.link_child(torch.where(expand, parent, tree.null), slot, rows)
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

    def _backup(self, rows: torch.Tensor, games: torch.Tensor, leaf: torch.Tensor, value: torch.Tensor) -> None:
        """Add one visit and the signed leaf value of its game to every node `rows` (NULL
        entries are ignored)."""
        tree = self.tree
        leaf_side = tree.field("to_move", leaf).index_select(0, games)
        value = value.index_select(0, games)
        valid = (rows != tree.null).float()
        signed = valid * torch.where(tree.mover.index_select(0, rows) == leaf_side, value, -value)
        tree.back_up(rows, signed, self.config.fpu_reduction)

    def _check_tables(self) -> None:
        if self._captured is not None and self._captured.search is not self:
            raise RuntimeError(
                "a later search of the same MCTS took over this search's tables (captured simulations "
                "keep one set per MCTS): finish a search before starting the next"
            )

    def result(self) -> SearchResult:
        self._check_tables()
        tree, root = self.tree, self.tree.base
        return SearchResult(
            actions=tree.field("actions", root),
            legal=tree.field("legal", root),
            visits=tree.children(root, N1) - 1,
            q=tree.children(root, Q),
            prior=self.root_prior,
            root_value=tree.incoming(root, Q),
            network_value=self.network_value,
            pv=self._principal_variation(),
            done=~self.active,
        )

    def _principal_variation(self) -> torch.Tensor:
        tree = self.tree
        cur, alive = tree.base, self.active
        line = []
        for _ in range(self.config.pv_length):
            n = tree.children(cur, N1) - 1
            best = n.argmax(1, keepdim=True)
            alive = alive & (n.gather(1, best).squeeze(1) > 0)
            action = tree.field("actions", cur).gather(1, best).squeeze(1)
            line.append(torch.where(alive, action, NO_ACTION))
            cur = torch.where(alive, tree.child.index_select(0, cur).gather(1, best).squeeze(1), cur)
        if not line:
            return torch.empty(tree.batch_size, 0, dtype=torch.int64, device=cur.device)
        return torch.stack(line, 1)


class _Walk(NamedTuple):
    """Where each game's fixed-shape descent stands: its current node and whether it goes
    on; where it stopped (`leaf`), and for a walk that reached an unexpanded slot (`expand`)
    that slot's parent and index; the levels it walked."""

    cur: torch.Tensor
    going: torch.Tensor
    leaf: torch.Tensor
    parent: torch.Tensor
    slot: torch.Tensor
    expand: torch.Tensor
    levels: torch.Tensor


def _walk_levels(
    edges, scores, child, terminal, null, cur, going, leaf, parent, slot, expand, levels, path, columns, games
):
    """`len(columns)` levels of the fixed-shape descent for the games `games` (the others,
    and those no longer descending, keep their values): at each, the PUCT choice at `cur`,
    and the path's entry at the level's column."""
    walk = (cur, going, leaf, parent, slot, expand, levels)
    cur, going, leaf, parent, slot, expand, levels = (t.index_select(0, games) for t in walk)
    for level in range(columns.shape[0]):
        choice = puct_choice(edges, scores, cur)
        nxt = child.view(-1).index_select(0, cur * NUM_SLOTS + choice)
        fresh = nxt == null
        moved_to = torch.where(fresh, cur, nxt)
        path.index_put_((games, columns[level].expand_as(games)), torch.where(going & ~fresh, nxt, null))
        parent = torch.where(going, cur, parent)
        slot = torch.where(going, choice, slot)
        expand = torch.where(going, fresh, expand)
        leaf = torch.where(going, moved_to, leaf)
        levels = levels + going.long()
        going = going & ~fresh & ~terminal.index_select(0, moved_to)
        cur = torch.where(going, moved_to, cur)
    walked = (cur, going, leaf, parent, slot, expand, levels)
    return _Walk(*(whole.index_copy(0, games, part) for whole, part in zip(walk, walked)))


def _copy_to_host(value: torch.Tensor) -> tuple[torch.Tensor | int, torch.cuda.Event | None]:
    """Start copying a CUDA scalar to the host without waiting; the event marks its
    arrival (a CPU scalar is read at once)."""
    if value.device.type != "cuda":
        return int(value), None
    host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
    host.copy_(value, non_blocking=True)
    arrived = torch.cuda.Event()
    arrived.record()
    return host, arrived


@dataclass(frozen=True)
class _FixedSteps:
    walk: object
    prepare: object
    create: object
    create_ahead: object


_FIXED_STEPS: dict[str | None, _FixedSteps] = {}
# Inductor options for the pieces' CPU code (GPU code keeps the defaults). Scalar loops:
# the pieces are gathers over short rows (49 slots, 5 pieces, 8 rays), where its vectorised
# loops (gathered lanes, masked tails) ran about twice as slow. A C++ wrapper: the Python
# one spent some 50 us a call allocating the dozens of small buffers of the unrolled walk
# levels and checking sizes (docs/performance.md). No size asserts: dynamo's guards have
# checked the inputs' sizes and strides already, and the generated checks built a string
# stream each (2-3% of a batch-64 simulation).
_CPU_COMPILE_OPTIONS = {"cpp.simdlen": 1, "cpp_wrapper": True, "size_asserts": False}


def _fixed_steps(compile_for: str | None) -> _FixedSteps:
    """The pieces of a fixed-shape simulation, compiled for a device type (`compile_for`)
    or not (None), made once per process (every search shares torch.compile's cache).
    Compiled for the first batch size seen, then once for any size: a draining self-play
    batch meets dozens of sizes, more than dynamo keeps graphs for, and it recompiles with
    the batch size symbolic (the path levels the walks reach likewise). Not `dynamic=True`
    from the start: it makes the engine's layout constants symbolic too, 2x slower."""
    if compile_for not in _FIXED_STEPS:
        pieces = (_walk_levels, SearchRun._prepare_fixed, SearchRun._create_fixed, SearchRun._create_ahead)
        if compile_for is not None:
            log.info(
                "search.compile: the first simulations compile the search for %s (about a minute on a 2-core "
                "CPU, again for a new batch size)", compile_for,
            )
            options = _CPU_COMPILE_OPTIONS if compile_for == "cpu" else None
            pieces = tuple(torch.compile(piece, fullgraph=True, options=options) for piece in pieces)
        _FIXED_STEPS[compile_for] = _FixedSteps(*pieces)
    return _FIXED_STEPS[compile_for]
