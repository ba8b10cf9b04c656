import torch

from razzle.game.actions import END, NUM_ACTIONS, mirror_actions, rotate_actions
from razzle.model.policy import canonical_actions, legal_mask, mirror_policy, reorient_policy

ALL = torch.arange(NUM_ACTIONS)


def is_permutation(ids: torch.Tensor) -> bool:
    return torch.equal(ids.sort().values, ALL)


def test_canonical_ids_are_an_involutive_permutation_for_both_players():
    for player in (0, 1):
        to_move = torch.tensor([player])
        ids = canonical_actions(ALL.unsqueeze(0), to_move)[0]
        assert is_permutation(ids)
        assert torch.equal(canonical_actions(ids.unsqueeze(0), to_move)[0], ALL)
        assert ids[END] == END
    assert torch.equal(canonical_actions(ALL.unsqueeze(0), torch.tensor([0]))[0], ALL)


def test_mirror_is_a_permutation_that_commutes_with_the_half_turn():
    mirrored = mirror_policy(ALL)
    assert is_permutation(mirrored) and torch.equal(mirror_policy(mirrored), ALL)
    assert torch.equal(mirrored, mirror_actions(ALL))
    assert torch.equal(mirror_actions(rotate_actions(ALL)), rotate_actions(mirror_actions(ALL)))


def test_reorient_policy_moves_each_entry_to_its_canonical_id():
    values = torch.rand(2, NUM_ACTIONS, generator=torch.Generator().manual_seed(0))
    to_move = torch.tensor([0, 1])
    canonical = reorient_policy(values, to_move)
    assert torch.equal(canonical[0], values[0])
    assert torch.equal(canonical[1, rotate_actions(ALL)], values[1])
    assert torch.equal(reorient_policy(canonical, to_move), values)


def test_legal_actions_of_real_positions_map_one_to_one(positions):
    mask = legal_mask(positions)
    assert torch.equal(mask.sum(1), positions.legal.sum(1))  # no two legal actions share an id
    for game in range(positions.batch_size):
        absolute = positions.actions[game][positions.legal[game]]
        canonical = mask[game].nonzero().flatten()
        back = canonical_actions(canonical.unsqueeze(0), positions.to_move[game : game + 1])[0]
        assert torch.equal(back.sort().values, absolute.sort().values)


def test_player_two_first_turn_has_player_one_opening_ids():
    """The start is symmetric under the half-turn, and Player 1's c1-b3 reaches nothing of
    Player 2's, so Player 2's first legal actions have the canonical ids of the opening."""
    from razzle.game import Position

    opening = Position.initial()
    reply = opening.play("c1-b3")
    assert torch.equal(legal_mask(reply.state), legal_mask(opening.state))
    assert legal_mask(opening.state).sum() == 14
