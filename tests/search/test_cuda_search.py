"""The batched search on a GPU gives the visits it gives on the CPU, for the same seeds."""

import pytest
import torch

from razzle.game.bench import midgame_positions
from razzle.search import MCTS, SearchConfig, UniformEvaluator


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_search_visits_match_cpu():
    config = SearchConfig(simulations=32)
    seeds = torch.arange(64, dtype=torch.int64) * 7919
    results = []
    for device in ("cpu", "cuda"):
        positions = midgame_positions(64, torch.device("cpu"), seed=6).to(device)
        results.append(MCTS(UniformEvaluator(), config).search(positions, seeds.to(device), root_noise=True).to("cpu"))
    cpu, cuda = results
    assert torch.equal(cpu.visits, cuda.visits)
    assert torch.allclose(cpu.root_value, cuda.root_value, atol=1e-5)
