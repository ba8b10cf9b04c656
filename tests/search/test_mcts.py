"""The batched search's bookkeeping: reproducibility per game, root noise, visit counts,
finished games, and leaves that agree exactly with the rules engine."""

import pytest
import torch

from razzle.game import Position, Rules, initial_state, step
from razzle.game.bench import midgame_positions
from razzle.game.engine import random_actions, repetition_key
from razzle.game.state import State
from razzle.search import MCTS, SearchConfig, UniformEvaluator
from razzle.search.tree import PRIOR


class PositionalEvaluator:
    """A deterministic stand-in for a network: logits and value depend on the position
    only, so searches are uneven (unlike the uniform evaluator) yet reproducible."""

    def __call__(self, state: State):
        code = (state.squares.view(state.batch_size, -1) * torch.arange(1, 11)).sum(1) + 7 * state.turn
        phase = code.unsqueeze(1).float() * 0.37 + torch.arange(897).float() * 0.11
        return torch.sin(phase) * 2, torch.tanh(torch.cos(code.float()))


class OccurrenceEvaluator:
    """Value = a quarter of the occurrences of the current turn-start position in the
    history it is given (0 mid-chain): exposes whether leaves carry exact counts."""

    def __call__(self, state: State):
        return torch.zeros(state.batch_size, 897), occurrence_value(state)


def occurrence_value(state: State) -> torch.Tensor:
    count = (state.history == repetition_key(state).unsqueeze(1)).sum(1)
    return torch.where(state.mid_chain, 0.0, 0.25 * count.float())


def mixed_batch(size: int) -> State:
    state = midgame_positions(size, torch.device("cpu"), seed=3)
    over = initial_state(1)
    over.done[:] = True
    over.legal[:] = False
    return State.cat([state, over])


def assert_same(a, b):
    for name in a.__dataclass_fields__:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("root_noise", [False, True])
def test_batched_search_equals_separate_searches_with_the_same_seeds(root_noise):
    state = mixed_batch(6)
    seeds = torch.tensor([11, 12, 13, 14, 15, 16, 17])
    mcts = MCTS(PositionalEvaluator(), SearchConfig(simulations=48))
    together = mcts.search(state, seeds, root_noise)
    for game in range(state.batch_size):
        alone = mcts.search(state.index(game), seeds[game : game + 1], root_noise)
        assert_same(alone, together.index(game))


def test_a_search_on_the_tables_of_earlier_searches_equals_a_fresh_one():
    """One MCTS hands each finished search's tree tables, uninitialised, to the next:
    nothing of the earlier searches may show in a later one."""
    config = SearchConfig(simulations=40)
    mcts = MCTS(PositionalEvaluator(), config)
    later, seeds = midgame_positions(5, torch.device("cpu"), seed=2), torch.arange(5) * 101
    for batch in (8, 5):
        mcts.search(midgame_positions(batch, torch.device("cpu"), seed=batch), torch.arange(batch), root_noise=True)
    reused = mcts.search(later, seeds, root_noise=True)
    assert_same(reused, MCTS(PositionalEvaluator(), config).search(later, seeds, root_noise=True))


def test_seed_changes_only_ties_and_noise():
    state = mixed_batch(4)
    mcts = MCTS(UniformEvaluator(), SearchConfig(simulations=32))
    a = mcts.search(state, torch.tensor([1, 2, 3, 4, 5]))
    b = mcts.search(state, torch.tensor([1, 2, 3, 4, 5]))
    c = mcts.search(state, torch.tensor([9, 9, 9, 9, 9]))
    assert_same(a, b)
    assert not torch.equal(a.visits, c.visits)


def test_root_noise_is_a_dirichlet_mix_on_legal_slots_only():
    state = midgame_positions(5, torch.device("cpu"), seed=4)
    config = SearchConfig(simulations=1, dirichlet_epsilon=1.0)
    run = MCTS(UniformEvaluator(), config).start(state, torch.arange(5), root_noise=True)
    searched = run.tree.children(run.tree.base, PRIOR) / config.c_puct
    assert torch.equal(torch.isinf(searched), ~state.legal)
    noise = torch.where(state.legal, searched, 0.0)
    assert torch.allclose(noise.sum(1), torch.ones(5), atol=1e-3)
    assert not torch.allclose(noise, run.root_prior)
    result = run.result()
    assert torch.allclose(result.prior.sum(1), torch.ones(5))
    assert torch.equal(result.prior > 0, state.legal), "the reported prior is the raw one"


def test_visits_add_up_to_the_simulations_and_finished_games_are_left_alone():
    state = mixed_batch(5)
    result = MCTS(UniformEvaluator(), SearchConfig(simulations=40)).search(state)
    assert result.visits[:5].sum(1).tolist() == [40.0] * 5
    assert torch.equal(result.visits[:5] > 0, result.legal[:5] & (result.visits[:5] > 0))
    assert not bool((result.visits[:5] * ~result.legal[:5]).any())
    assert result.done.tolist() == [False] * 5 + [True]
    assert result.visits[5].sum() == 0 and (result.pv[5] == -1).all()
    assert torch.allclose(result.policy[:5].sum(1), torch.ones(5))


def test_search_rejects_bad_seeds():
    state = initial_state(2)
    mcts = MCTS(UniformEvaluator(), SearchConfig(simulations=2))
    with pytest.raises(ValueError, match="seeds"):
        mcts.search(state, torch.tensor([1]))
    with pytest.raises(ValueError, match="seeds"):
        mcts.search(state, torch.tensor([-1, 2]))


def test_a_complete_search_refuses_more_simulations():
    run = MCTS(UniformEvaluator(), SearchConfig(simulations=2)).start(initial_state(1))
    run.simulate()
    run.simulate()
    with pytest.raises(RuntimeError, match="complete"):
        run.simulate()


def _repeating_positions(rules: Rules) -> State:
    """Games that shuffle knights back and forth, stopped at different points, so that
    draws by repetition (and by the turn limit) lie inside the search trees."""
    shuffle = ["b1-c3", "b8-c6", "c3-b1", "c6-b8"] * 3
    roots = []
    for stop in (3, 5, 6, 7, 9):
        position = Position.initial(rules)
        for move in shuffle[:stop]:
            position = position.play(move)
        roots.append(position.state)
    generator = torch.Generator().manual_seed(5)
    state = initial_state(3, rules)
    for _ in range(9):
        state = step(state, random_actions(state, generator))
    return State.cat(roots + [state])


def _check_subtree(tree, row, engine_state, evaluator, seen):
    """Walk the tree and compare every node with the engine's own `step` from the root
    (which keeps the real repetition history)."""
    rows = torch.tensor([row])
    for name in ("to_move", "mid_chain", "turn", "done", "winner", "legal"):
        assert torch.equal(tree.field(name, rows), getattr(engine_state, name)), name
    if not bool(engine_state.done):
        assert tree.leaf_value[row].item() == pytest.approx(float(evaluator(engine_state)[1][0]))
    seen.append(bool(engine_state.done))
    for slot in tree.expanded(rows)[0].nonzero().flatten().tolist():
        action = tree.field("actions", rows)[:, slot]
        _check_subtree(tree, int(tree.child[row, slot]), step(engine_state, action), evaluator, seen)


def test_every_tree_node_matches_the_engine_with_its_real_history():
    rules = Rules(max_turns=12)
    roots = _repeating_positions(rules)
    evaluator = OccurrenceEvaluator()
    run = MCTS(evaluator, SearchConfig(simulations=120)).start(roots)
    for _ in range(120):
        run.simulate()
    tree = run.tree
    finished = []
    for game in range(roots.batch_size):
        _check_subtree(tree, int(tree.base[game]), roots.index(game), evaluator, finished)
    assert sum(finished) >= 5, "the trees should reach draws by repetition or turn limit"
    assert bool((tree.leaf_value == 0.5).any()), "some leaves should be second occurrences"
    assert int(tree.visits(tree.base).sum()) == 121 * roots.batch_size


def test_repetition_draws_in_the_tree_are_the_engines():
    roots = _repeating_positions(Rules())
    run = MCTS(UniformEvaluator(), SearchConfig(simulations=150)).start(roots.index(slice(0, 5)))
    for _ in range(150):
        run.simulate()
    tree = run.tree
    created = torch.cat([tree.base[g] + torch.arange(151) for g in range(5)])
    drawn = tree.field("done", created) & (tree.field("winner", created) < 0)
    assert bool(drawn.any()), "some leaf should be a third occurrence"
    for game in range(5):
        _check_subtree(tree, int(tree.base[game]), roots.index(game), UniformEvaluator(), [])
