import math

import pytest
import torch

from razzle.game import Position
from razzle.game.actions import NUM_ACTIONS, rotate_actions
from razzle.model.planes import ENCODING_VERSION, PLANE_NAMES, encode_states
from razzle.model.samples import SampleFileError, Samples, build_samples, difficulty_target


def player_two_position() -> Position:
    return Position.initial().play("c1-b3")  # Player 2 to move; 14 legal actions


def test_build_samples_turns_everything_to_the_side_to_move():
    position = player_two_position()
    legal_ids = position.state.actions[0][position.state.legal[0]]
    chosen = legal_ids[:2]
    search = torch.zeros(1, NUM_ACTIONS)
    search[0, chosen] = 0.5
    prior = torch.zeros(1, NUM_ACTIONS)
    samples = build_samples(position.state, search, prior, outcome=torch.tensor([1]), search_value=torch.tensor([0.25]))
    assert torch.equal(samples.planes, encode_states(position.state))
    assert samples.policy[0, rotate_actions(chosen)].tolist() == [0.5, 0.5]
    assert samples.policy.sum() == 1.0
    assert torch.equal(samples.legal[0].nonzero().flatten().sort().values, rotate_actions(legal_ids).sort().values)
    assert samples.value.tolist() == [-1.0]  # Player 1 won: a loss for Player 2
    # Uniform prior over 14 legal actions; the search split between 2: KL = ln(7).
    assert samples.difficulty.item() == pytest.approx(math.log(7) / 2)
    assert samples.turn.tolist() == [1]
    assert samples.search_value.tolist() == [0.25]  # already the side to move's: kept as it is


def test_difficulty_target_is_capped_at_one_and_zero_when_search_agrees():
    legal = torch.tensor([[True, True, True, False]])
    prior_logits = torch.tensor([[0.0, 0.0, 0.0, 9.0]])  # the illegal logit must not count
    agreeing = torch.full((1, 4), 1 / 3) * legal
    assert difficulty_target(agreeing, prior_logits, legal).item() == pytest.approx(0.0, abs=1e-6)
    surprising = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert difficulty_target(surprising, torch.tensor([[-20.0, 0.0, 0.0, 0.0]]), legal).item() == 1.0


def test_build_samples_refuses_illegal_mass_and_finished_games():
    state = player_two_position().state
    illegal = torch.zeros(1, NUM_ACTIONS)
    illegal[0, 0] = 1.0  # a1's first knight jump: there is no piece on a1
    with pytest.raises(ValueError, match="illegal"):
        build_samples(state, illegal, torch.zeros(1, NUM_ACTIONS), torch.tensor([0]), torch.zeros(1))
    one, two = torch.zeros(1, NUM_ACTIONS), torch.zeros(2, NUM_ACTIONS)
    with pytest.raises(ValueError, match="shape"):
        build_samples(state, two, one, torch.tensor([0]), torch.zeros(1))
    with pytest.raises(ValueError, match="search_value must have shape"):
        build_samples(state, one, one, torch.tensor([0]), torch.zeros(2))


def test_shard_round_trip(tmp_path, real_samples):
    path = real_samples.save(tmp_path / "shard.pt")
    loaded = Samples.load(path)
    # Stored as float16: exact but for the turn-limit fraction.
    turn_limit = PLANE_NAMES.index("turn_limit")
    exact = [i for i in range(len(PLANE_NAMES)) if i != turn_limit]
    assert torch.equal(loaded.planes[:, exact], real_samples.planes[:, exact])
    assert torch.allclose(loaded.planes[:, turn_limit], real_samples.planes[:, turn_limit], atol=5e-4, rtol=0)
    assert torch.equal(loaded.legal, real_samples.legal)
    assert torch.allclose(loaded.policy, real_samples.policy, rtol=1e-3, atol=1e-6)
    for name in ("value", "difficulty", "turn", "search_value"):
        assert torch.equal(getattr(loaded, name), getattr(real_samples, name))
    assert loaded.planes.dtype == loaded.policy.dtype == torch.float32
    assert [p.name for p in tmp_path.iterdir()] == ["shard.pt"]


def test_unusable_shards_are_named(tmp_path, real_samples):
    with pytest.raises(SampleFileError, match="does not exist"):
        Samples.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a shard")
    with pytest.raises(SampleFileError, match="not a readable sample shard"):
        Samples.load(tmp_path / "junk.pt")
    path = real_samples.save(tmp_path / "old.pt")
    payload = torch.load(path, weights_only=True)
    payload["encoding_version"] = 0
    torch.save(payload, path)
    with pytest.raises(SampleFileError, match="input encoding 0"):
        Samples.load(path)
    payload["encoding_version"] = ENCODING_VERSION
    del payload["samples"]["policy"]
    torch.save(payload, path)
    with pytest.raises(SampleFileError, match="lacks sample fields"):
        Samples.load(path)


def test_a_shard_older_than_search_values_loads_with_the_outcome_or_is_refused_by_name(tmp_path, real_samples):
    path = real_samples.save(tmp_path / "before_search_values.pt")
    payload = torch.load(path, weights_only=True)
    del payload["samples"]["search_value"]
    torch.save(payload, path)
    loaded = Samples.load(path)
    assert torch.equal(loaded.search_value, real_samples.value)  # the outcome target never reads it
    with pytest.raises(SampleFileError, match=r"before_search_values\.pt has no search values.*value_target=mix"):
        Samples.load(path, require_search_value=True)
    current = Samples.load(real_samples.save(tmp_path / "new.pt"), require_search_value=True)
    assert torch.equal(current.search_value, real_samples.search_value)


def test_mirroring_keeps_the_values(real_samples):
    mirrored = real_samples.mirrored()
    assert torch.equal(mirrored.search_value, real_samples.search_value)
    assert torch.equal(mirrored.value, real_samples.value)


def test_random_play_samples_are_real_unfinished_positions(real_samples):
    assert len(real_samples) == 64
    assert real_samples.legal.any(1).all()
    assert torch.allclose(real_samples.policy.sum(1), torch.ones(64))
    assert not (real_samples.policy * ~real_samples.legal).any()
    assert set(real_samples.value.tolist()) <= {-1.0, 0.0, 1.0}
    assert ((real_samples.difficulty >= 0) & (real_samples.difficulty <= 1)).all()
    assert ((real_samples.search_value >= -1) & (real_samples.search_value <= 1)).all()
