"""Every setting of the search, in one dataclass mirrored by conf/search/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchConfig:
    """PUCT settings.

    simulations: leaf evaluations per root (per game); the tree has one node per simulation.
    c_puct: weight of the prior-driven exploration term.
    fpu_reduction: an unvisited child is valued at its parent's value minus this
        ("first-play urgency"); 0 treats unexplored moves as average ones, larger values
        search deeper and narrower.
    dirichlet_alpha, dirichlet_epsilon: root noise mixed into the prior when a search asks
        for it (self-play only): prior = (1 - epsilon) * prior + epsilon * Dirichlet(alpha).
    pv_length: moves of the principal variation reported for display.
    compile: run each simulation in fixed shapes (no data-dependent shape inside a piece;
        on a GPU no host read per simulation) with its pieces compiled by torch.compile;
        the same visits as the eager path. Off by default: on a CPU it is faster than eager
        (about 2.3x at batch 64, 1.5x at 1024; README, performance), but it needs
        a C++ compiler and compiles for half a minute or more, a few times a process (the
        first batch size, any depth of the tree, any size, size 1), which short runs and
        tests would pay.
    cuda_graphs: on a CUDA device, capture each fixed-shape simulation with its network
        call as a CUDA graph (one per walk length, kept while the batch keeps its shape)
        and replay it; implies the fixed-shape simulation there, ignored on a CPU.
    """

    simulations: int = 64
    c_puct: float = 1.5
    fpu_reduction: float = 0.3
    dirichlet_alpha: float = 0.3
    dirichlet_epsilon: float = 0.25
    pv_length: int = 8
    compile: bool = False
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        checks = {
            "simulations": _is_int(self.simulations) and self.simulations >= 1,
            "c_puct": _is_number(self.c_puct) and self.c_puct > 0,
            "fpu_reduction": _is_number(self.fpu_reduction) and self.fpu_reduction >= 0,
            "dirichlet_alpha": _is_number(self.dirichlet_alpha) and self.dirichlet_alpha > 0,
            "dirichlet_epsilon": _is_number(self.dirichlet_epsilon) and 0 <= self.dirichlet_epsilon <= 1,
            "pv_length": _is_int(self.pv_length) and self.pv_length >= 0,
            "compile": isinstance(self.compile, bool),
            "cuda_graphs": isinstance(self.cuda_graphs, bool),
        }
        expected = {
            "simulations": "a positive integer",
            "c_puct": "a positive number",
            "fpu_reduction": "a number >= 0",
            "dirichlet_alpha": "a positive number",
            "dirichlet_epsilon": "a number in [0, 1]",
            "pv_length": "an integer >= 0",
            "compile": "true or false",
            "cuda_graphs": "true or false",
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"search.{name} must be {expected[name]}, got {getattr(self, name)!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
