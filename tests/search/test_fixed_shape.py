"""The fixed-shape simulation (`search.compile`) builds the same tree as the eager one."""

from dataclasses import replace

import pytest
import torch
from torch._dynamo.utils import counters
from torch._inductor.utils import run_and_get_code

from razzle.game.bench import midgame_positions
from razzle.model.network import RazzleNet
from razzle.model.evaluator import NetworkEvaluator
from razzle.search import MCTS, SearchConfig, UniformEvaluator
from razzle.search.bench import fresh_compilation, search_throughput
from razzle.search import mcts as mcts_module
from razzle.search.mcts import WALK_LEVELS

FIELDS = ("visits", "q", "root_value", "pv", "prior", "network_value")


def _positions(batch: int):
    positions = midgame_positions(batch, torch.device("cpu"), seed=6)
    positions.done[1] = True  # a finished game in the batch searches nothing
    return positions


def _search(mcts: MCTS, positions, seeds):
    run = mcts.start(positions, seeds, root_noise=True)
    for _ in range(mcts.config.simulations):
        run.simulate()
    return run.result(), run


def _children(run) -> torch.Tensor:
    """Each created node's child rows, -1 at slots with none."""
    tree = run.tree
    rows = torch.cat([tree.base[g] + torch.arange(int(run.next_free[g])) for g in range(tree.batch_size)])
    return torch.where(tree.expanded(rows), tree.child[rows], -1)


def _large_batch_forms(monkeypatch, large_batch: bool) -> None:
    """Make the CPU's fixed-shape search take its large-batch forms at any batch (the
    first walk call split in two, `SPLIT_FIRST_WALK`; the backup without the NULL path
    entries, `COMPACT_BELOW`), or never."""
    monkeypatch.setattr(mcts_module, "COMPACT_BELOW", 0 if large_batch else 2**62)
    monkeypatch.setattr(mcts_module, "SPLIT_FIRST_WALK", 0 if large_batch else 2**62)


def _fixed_shape_search_of_twelve_games():
    """The fixed-shape search of twelve games, after checking that it is the eager one."""
    config = SearchConfig(simulations=24)
    positions, seeds = _positions(12), torch.arange(12, dtype=torch.int64) * 7919
    eager, eager_run = _search(MCTS(UniformEvaluator(), config), positions, seeds)
    fixed, fixed_run = _search(MCTS(UniformEvaluator(), config, fixed_shape=True), positions, seeds)
    for name in FIELDS:
        assert torch.equal(getattr(eager, name), getattr(fixed, name)), name
    assert torch.equal(_children(eager_run), _children(fixed_run))
    assert eager_run.evaluations == fixed_run.evaluations
    return fixed_run


@pytest.mark.parametrize("large_batch", [False, True], ids=["small-batch-forms", "large-batch-forms"])
def test_fixed_shape_search_agrees_exactly_with_the_eager_one(monkeypatch, large_batch):
    _large_batch_forms(monkeypatch, large_batch)
    fixed_run = _fixed_shape_search_of_twelve_games()
    assert fixed_run.height > WALK_LEVELS  # the descents took more than one call of the walk


def test_prepared_descents_that_stop_short_are_walked_afresh(monkeypatch):
    """Below `SPLIT_FIRST_WALK` games the node creation prepares the next simulation's
    descent over two walk calls' levels (`_create_ahead`). With 3 levels a call the trees
    grow deeper than that, and more games go past the first call's levels than its second
    takes at first, so some simulations walk afresh from the roots."""
    monkeypatch.setattr(mcts_module, "WALK_LEVELS", 3)
    fixed_run = _fixed_shape_search_of_twelve_games()
    assert fixed_run.height > 2 * 3


def test_fixed_shape_search_with_a_network_agrees_with_the_eager_one():
    """The fixed shape evaluates every leaf of the batch, so rounding may differ in the
    last bits; the search's choices do not."""
    torch.manual_seed(0)
    evaluator = NetworkEvaluator(RazzleNet.of_size("tiny"))
    config = SearchConfig(simulations=12)
    positions, seeds = _positions(6), torch.arange(6, dtype=torch.int64) + 3
    eager, _ = _search(MCTS(evaluator, config), positions, seeds)
    fixed, _ = _search(MCTS(evaluator, config, fixed_shape=True), positions, seeds)
    assert torch.equal(eager.visits, fixed.visits)
    assert torch.allclose(eager.root_value, fixed.root_value, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("large_batch", [False, True], ids=["small-batch-forms", "large-batch-forms"])
def test_compiled_search_agrees_exactly_with_the_eager_one_and_writes_the_tree_in_place(monkeypatch, large_batch):
    """torch.compile(fullgraph=True) of the pieces: a minute of compilation on a CPU.

    In place: inductor copies a whole table, on every call, when a graph writes it both
    by rows and through a flattened view (`Tree.set_edges`); the generated code must have
    no loop over a whole table's elements (the batch's loops are there, so the code was
    read)."""
    _large_batch_forms(monkeypatch, large_batch)
    config = SearchConfig(simulations=24)
    positions, seeds = _positions(12), torch.arange(12, dtype=torch.int64) * 31
    eager, _ = _search(MCTS(UniformEvaluator(), config), positions, seeds)
    with torch._inductor.config.patch(force_disable_caches=True):
        (compiled, run), codes = run_and_get_code(
            _search, MCTS(UniformEvaluator(), replace(config, compile=True)), positions, seeds
        )
    for name in FIELDS:
        assert torch.equal(getattr(eager, name), getattr(compiled, name)), name
    assert run.height > WALK_LEVELS

    def loops_over(elements: int) -> bool:
        return any(f"<static_cast<int64_t>({elements}L)" in code for code in codes)

    assert loops_over(positions.batch_size)
    tables = {name: table.numel() for name, table in run.tree.storage.items()}
    assert not [name for name, elements in tables.items() if loops_over(elements)]


@pytest.mark.slow
def test_one_compiled_search_takes_batches_of_every_size_as_a_draining_batch_does():
    """A draining self-play batch searches ever fewer games: more batch sizes than dynamo
    compiles a function for (`recompile_limit`), which with fixed shapes failed the search
    once the limit was hit. The pieces are compiled for the first size, then once for any
    size (and size 1, which dynamo specialises), each search as exact as the eager one."""
    config = SearchConfig(simulations=10)
    compiled = MCTS(UniformEvaluator(), replace(config, compile=True))
    sizes = range(10, 0, -1)
    assert len(sizes) > torch._dynamo.config.recompile_limit
    graphs_before = counters["stats"]["unique_graphs"]
    for size in sizes:
        positions, seeds = _positions(12).index(slice(0, size)), torch.arange(size, dtype=torch.int64) * 101
        eager, _ = _search(MCTS(UniformEvaluator(), config), positions, seeds)
        searched = compiled.search(positions, seeds, root_noise=True)
        for name in FIELDS:
            assert torch.equal(getattr(eager, name), getattr(searched, name)), (size, name)
    # At most three graphs for the walk, and four for each of the two pieces that also
    # take the levels the walks reach, an int dynamo makes symbolic on its first change
    # (fewer when an earlier test compiled them already).
    assert counters["stats"]["unique_graphs"] - graphs_before <= 3 + 4 + 4


@pytest.mark.slow
def test_a_bench_figure_compiles_afresh_for_its_batch_size_and_stays_exact():
    """The benches start each figure from empty dynamo caches (`fresh_compilation`), so a
    later batch size runs on pieces compiled for that size alone, not on pieces recompiled
    for any size (slower); the search stays the same."""
    config = SearchConfig(simulations=6)
    compiled = MCTS(UniformEvaluator(), replace(config, compile=True))

    def search_both(size: int) -> None:
        positions, seeds = _positions(6).index(slice(0, size)), torch.arange(size, dtype=torch.int64) + 17
        eager, _ = _search(MCTS(UniformEvaluator(), config), positions, seeds)
        searched = compiled.search(positions, seeds, root_noise=True)
        for name in FIELDS:
            assert torch.equal(getattr(eager, name), getattr(searched, name)), (size, name)

    search_both(3)
    fresh_compilation(compiled.config)
    search_both(5)
    graphs_before = counters["stats"]["unique_graphs"]
    search_both(4)
    # Without the fresh start, size 5 would have recompiled the pieces for any size, and
    # size 4 would have compiled nothing.
    assert counters["stats"]["unique_graphs"] > graphs_before


@pytest.mark.slow
def test_a_bench_window_that_compiled_is_measured_again():
    """Without warm-up, the first measuring window compiles the pieces; its figure is
    thrown away and a window that compiled nothing is the one reported."""
    config = SearchConfig(simulations=6, compile=True)
    fresh_compilation(config)
    measured = search_throughput(UniformEvaluator(), _positions(6), config, seconds=0.05, warm_up=False)
    assert measured["windows_discarded"] >= 1
    assert not measured["compiled_while_measuring"]
    graphs_before = counters["stats"]["unique_graphs"]
    again = search_throughput(UniformEvaluator(), _positions(6), config, seconds=0.05, warm_up=False)
    assert again["windows_discarded"] == 0 and counters["stats"]["unique_graphs"] == graphs_before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_compiled_gpu_search_gives_the_visits_of_eager_cpu_search(cuda_graphs):
    """Three searches of one GPU MCTS: with CUDA graphs, the later ones replay captures."""
    config = SearchConfig(simulations=16)
    gpu = MCTS(UniformEvaluator(), replace(config, compile=True, cuda_graphs=cuda_graphs))
    for search in range(3):
        positions, seeds = _positions(32), torch.arange(32, dtype=torch.int64) * (7 + search)
        eager, _ = _search(MCTS(UniformEvaluator(), config), positions, seeds)
        compiled = gpu.search(positions.to("cuda"), seeds.cuda(), root_noise=True)
        assert torch.equal(eager.visits, compiled.visits.cpu())
        assert torch.allclose(eager.root_value, compiled.root_value.cpu(), atol=1e-5)
    assert (gpu._captured is not None) == cuda_graphs


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_search_replayed_as_cuda_graphs_with_a_bf16_network_agrees_with_the_uncaptured_one():
    torch.manual_seed(0)
    evaluator = NetworkEvaluator(RazzleNet.of_size("tiny"), "cuda", bf16=True)
    config = SearchConfig(simulations=16, compile=True)
    positions, seeds = _positions(64), torch.arange(64, dtype=torch.int64) * 13
    plain = MCTS(evaluator, config).search(positions.to("cuda"), seeds.cuda(), root_noise=True)
    graphs = MCTS(evaluator, replace(config, cuda_graphs=True))
    for _ in range(2):
        replayed = graphs.search(positions.to("cuda"), seeds.cuda(), root_noise=True)
        assert torch.equal(plain.visits, replayed.visits)


class _CopyOnItsWay:
    """A depth's copy from the device: not there until waited for."""

    def __init__(self):
        self.waited = False

    def query(self) -> bool:
        return self.waited

    def synchronize(self) -> None:
        self.waited = True


def test_the_height_bound_waits_only_for_depths_older_than_the_lag():
    run = MCTS(UniformEvaluator(), SearchConfig(simulations=8), fixed_shape=True).start(_positions(2))
    copies = [_CopyOnItsWay() for _ in range(4)]
    run._pending_depths.extend((torch.tensor(depth), copy) for depth, copy in zip((1, 2, 3, 3), copies))
    # Depths 1 and 2 waited for; two simulations still on their way may each add a level.
    assert run._height_bound(lag=2) == 2 + 2
    assert [copy.waited for copy in copies] == [True, True, False, False]
    assert run.height == 3
    assert all(copy.waited for copy in copies)
