"""The left-right mirror is a symmetry of the rules."""

import torch

from razzle.game.actions import MIRROR_ACTION, NUM_ACTIONS, ROTATE_ACTION, mirror_actions
from razzle.game.bench import midgame_positions
from razzle.game.engine import initial_state, random_actions, step
from razzle.game.position import legal_texts
from razzle.game.symmetry import mirror_action_text, mirror_state


def sorted_legal(state, actions=None):
    """Per game, its legal action ids in ascending order (-1 pads), slot order aside."""
    actions = state.actions if actions is None else actions
    return torch.where(state.legal, actions, -1).sort(1).values


def legal_sets(state):
    return [set(texts) for texts in legal_texts(state)]


def test_action_permutations_are_involutions():
    for table in (MIRROR_ACTION, ROTATE_ACTION):
        assert sorted(table) == list(range(NUM_ACTIONS))
        assert all(table[table[a]] == a for a in range(NUM_ACTIONS))


def test_mirrored_positions_have_the_mirrored_legal_actions():
    state = midgame_positions(600, torch.device("cpu"), seed=3)
    mirrored = mirror_state(state)
    for original, reflected in zip(legal_sets(state), legal_sets(mirrored)):
        assert {mirror_action_text(a) for a in original} == reflected
    assert torch.equal(sorted_legal(state, mirror_actions(state.actions)), sorted_legal(mirrored))


def test_mirrored_games_play_out_the_same():
    generator = torch.Generator().manual_seed(9)
    state = initial_state(200)
    mirrored = mirror_state(state)
    while not bool(state.done.all()):
        actions = random_actions(state, generator)
        state, mirrored = step(state, actions), step(mirrored, mirror_actions(actions))
        assert torch.equal(state.done, mirrored.done)
        assert torch.equal(sorted_legal(state, mirror_actions(state.actions)), sorted_legal(mirrored))
    assert torch.equal(state.winner, mirrored.winner)
