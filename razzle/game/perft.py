"""Perft: count legal action (or turn) sequences from the initial position, batched.

Conventions of RULES.md: an atomic perft of depth d counts sequences of exactly d atomic
actions, a turn perft sequences of d whole turns; terminal positions are leaves. Each
level is expanded as one batch, in chunks so that deep counts stay within memory.
"""

from __future__ import annotations

import torch

from razzle.game.engine import initial_state, step
from razzle.game.rules import Rules
from razzle.game.state import State


def _children(states: State) -> State:
    rows, slots = states.legal.nonzero(as_tuple=True)
    return step(states.index(rows), states.actions[rows, slots])


def _next_turn_starts(states: State, chunk: int) -> tuple[int, list[State]]:
    """All turns from these turn-start positions: (turns counted, non-terminal successors)."""
    count, finished, frontier = 0, [], [states]
    while frontier:
        children = _children(frontier.pop())
        turn_over = children.done | ~children.mid_chain
        count += int(turn_over.sum())
        finished.append(children.index(turn_over & ~children.done))
        open_chains = children.index(~turn_over)
        frontier += [open_chains.index(slice(i, i + chunk)) for i in range(0, open_chains.batch_size, chunk)]
    return count, finished


def perft(
    depth: int,
    turns: bool = False,
    rules: Rules | None = None,
    device: torch.device | str = "cpu",
    chunk: int = 1 << 17,
) -> list[int]:
    """Counts for depths 1..depth (atomic actions, or whole turns with `turns`)."""
    if depth < 1:
        raise ValueError(f"perft depth must be at least 1, got {depth}")
    counts = [0] * depth
    root = initial_state(1, rules, device, history_len=depth + 2)

    def expand(states: State, level: int) -> None:
        for start in range(0, states.batch_size, chunk):
            part = states.index(slice(start, start + chunk))
            if turns:
                count, successors = _next_turn_starts(part, chunk)
            else:
                children = _children(part)
                count, successors = children.batch_size, [children.index(~children.done)]
            counts[level] += count
            if level + 1 < depth:
                for successor in successors:
                    expand(successor, level + 1)

    expand(root, 0)
    return counts
