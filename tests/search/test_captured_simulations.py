"""Captured simulations (`search.cuda_graphs`) replay into the trees the search builds
without capture, search after search of one MCTS. On the CPU the capture is a stand-in
for CUDA's (`recorded_capture`) that replays the recorded ATen ops on the same tensors."""

from dataclasses import replace

import pytest
import torch

from razzle.game import Rules
from razzle.game.bench import midgame_positions
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.network import RazzleNet
from razzle.search import MCTS, SearchConfig, UniformEvaluator, mcts
from razzle.search.streams import draw_seeds
from tests.search.recorded_capture import RecordedCapture
from tests.search.test_mcts import OccurrenceEvaluator, _repeating_positions

FIELDS = ("visits", "q", "root_value", "pv", "prior", "network_value")


@pytest.fixture
def capture(monkeypatch) -> RecordedCapture:
    recorded = RecordedCapture()
    monkeypatch.setattr(mcts, "graph_capture", lambda config, device: recorded if config.cuda_graphs else None)
    return recorded


def _batch(size: int, seed: int):
    positions = midgame_positions(size, torch.device("cpu"), seed=seed)
    positions.done[seed % size] = True  # a finished game searches nothing
    return positions, (torch.arange(size, dtype=torch.int64) + seed) * 7919


def _agree(plain: MCTS, captured: MCTS, size: int, seed: int) -> None:
    positions, seeds = _batch(size, seed)
    expected = plain.search(positions, seeds, root_noise=True)
    got = captured.search(positions, seeds, root_noise=True)
    for name in FIELDS:
        assert torch.equal(getattr(expected, name), getattr(got, name)), name
    assert plain.evaluations == captured.evaluations


def test_replayed_simulations_build_the_trees_of_uncaptured_ones(capture, monkeypatch):
    # Walk calls of 4 levels: these trees grow 10-15 levels deep, so simulations with
    # several numbers of walk calls are captured.
    monkeypatch.setattr(mcts, "WALK_LEVELS", 4)
    config = SearchConfig(simulations=24)
    plain = MCTS(UniformEvaluator(), config, fixed_shape=True)
    captured = MCTS(UniformEvaluator(), replace(config, cuda_graphs=True))
    for seed in (6, 7, 8):  # one batch shape: the later searches replay the first one's captures
        _agree(plain, captured, 12, seed)
    # Every simulation is a warm-up (once per walk length) or a replay.
    assert capture.warm_ups + capture.replays == 3 * config.simulations
    assert capture.captures <= capture.warm_ups <= len(range(1, config.simulations + 2, mcts.WALK_LEVELS))
    assert len(captured._captured.replays) >= 2  # walks of more than one call were captured too


def test_a_batch_of_another_shape_is_captured_anew(capture):
    config = SearchConfig(simulations=10)
    plain = MCTS(UniformEvaluator(), config, fixed_shape=True)
    captured = MCTS(UniformEvaluator(), replace(config, cuda_graphs=True))
    _agree(plain, captured, 6, 1)
    _agree(plain, captured, 6, 2)
    captures = capture.captures
    _agree(plain, captured, 5, 3)
    assert capture.captures > captures
    _agree(plain, captured, 6, 4)


def test_replayed_simulations_with_a_network_agree_with_uncaptured_ones(capture):
    torch.manual_seed(0)
    evaluator = NetworkEvaluator(RazzleNet.of_size("tiny"))
    config = SearchConfig(simulations=10)
    plain = MCTS(evaluator, config, fixed_shape=True)
    captured = MCTS(evaluator, replace(config, cuda_graphs=True))
    for seed in (3, 4):
        _agree(plain, captured, 6, seed)
    assert capture.replays > 0


def test_replays_count_repetitions_against_their_own_search_s_history(capture):
    """Leaves' values depend on the repetitions the root's history holds: a replay that
    read an earlier search's history would value them differently."""
    roots = _repeating_positions(Rules())
    config = SearchConfig(simulations=30)
    plain = MCTS(OccurrenceEvaluator(), config, fixed_shape=True)
    captured = MCTS(OccurrenceEvaluator(), replace(config, cuda_graphs=True))
    seeds = draw_seeds(roots.batch_size, torch.Generator().manual_seed(0))
    for order in (torch.arange(roots.batch_size), torch.arange(roots.batch_size).flip(0)):
        expected = plain.search(roots.index(order), seeds, root_noise=True)
        got = captured.search(roots.index(order), seeds, root_noise=True)
        for name in FIELDS:
            assert torch.equal(getattr(expected, name), getattr(got, name)), name
    assert capture.replays > 0


def test_a_search_whose_tables_a_later_search_took_over_refuses_to_go_on(capture):
    search = MCTS(UniformEvaluator(), SearchConfig(simulations=4, cuda_graphs=True))
    first = search.start(*_batch(3, 1))
    first.simulate()
    search.start(*_batch(3, 2))
    with pytest.raises(RuntimeError, match="took over this search's tables"):
        first.simulate()
    with pytest.raises(RuntimeError, match="took over this search's tables"):
        first.result()


def test_a_search_on_the_cpu_is_not_captured():
    config = SearchConfig(simulations=4, cuda_graphs=True)
    search = MCTS(UniformEvaluator(), config)
    search.search(*_batch(3, 1))
    assert search._captured is None
