"""Whole simulations captured once and replayed (`search.cuda_graphs`): on CUDA, one graph
launch per simulation instead of hundreds of kernels and no Python in between. The search
(`razzle.search.mcts`) runs its fixed-shape simulation through `CapturedSimulations.run`;
what captures is `CudaGraphs` on a GPU, a recorder in the CPU tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from razzle.search.config import SearchConfig

if TYPE_CHECKING:
    from razzle.search.mcts import SearchRun


def unheld(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensors of a search that is not captured are its own."""
    return tensor


class CapturedSimulations:
    """Whole fixed-shape simulations, network call included, captured once per number of
    walk calls and replayed from then on (on CUDA: CUDA graphs, no Python and no kernel
    launches per simulation).

    A capture reads and writes memory at the addresses it saw, so the tensors a simulation
    touches outlive the search that made them: they are held here, and each later search
    of the same shape (`signature`) copies its own values into them: one search at a time
    per MCTS (`search`, the latest; an earlier one refuses to go on). The network's weights
    are read where they were at the capture: change them in place (`load_state_dict`) or
    search with a new MCTS. The first simulation with a given number of calls runs
    uncaptured (it compiles and warms up what the capture will record); the second is
    captured."""

    def __init__(self, capture, signature: tuple):
        self.capture = capture
        self.signature = signature
        self.tensors: dict[str, torch.Tensor] = {}
        self.tree_storage: dict[str, torch.Tensor] | None = None
        self.replays: dict[int, object] = {}
        self.warmed: set[int] = set()
        self.search: SearchRun | None = None

    def hold(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        kept = self.tensors.setdefault(name, tensor)
        return kept if kept is tensor else kept.copy_(tensor)

    def run(self, calls: int, simulation) -> None:
        replay = self.replays.get(calls)
        if replay is None:
            if calls not in self.warmed:
                self.warmed.add(calls)
                self.capture.warm_up(simulation)
                return
            replay = self.replays[calls] = self.capture.capture(simulation)
        replay()


class CudaGraphs:
    """Captures simulations as CUDA graphs, warmed up and captured on one side stream and
    sharing one memory pool (the captures never run at the same time)."""

    def __init__(self, device: torch.device):
        self.stream = torch.cuda.Stream(device)
        self.pool = torch.cuda.graph_pool_handle()

    def warm_up(self, simulation) -> None:
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            simulation()
        torch.cuda.current_stream().wait_stream(self.stream)

    def capture(self, simulation):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            simulation()
        return graph.replay


def graph_capture(config: SearchConfig, device: torch.device) -> CudaGraphs | None:
    """What captures the simulations of a search on `device`: CUDA graphs when the config
    asks for them and the device is a GPU, else nothing (the search runs as it is)."""
    if config.cuda_graphs and device.type == "cuda":
        return CudaGraphs(device)
    return None
