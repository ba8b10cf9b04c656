"""Self-play games, their samples and records, and the replay store."""

import json

import pytest
import torch

from razzle.game import Rules
from razzle.game.actions import NUM_ACTIONS
from razzle.game.engine import initial_state
from razzle.model.samples import Samples, searched_by
from razzle.search import MCTS, SearchConfig, UniformEvaluator
from razzle.search.streams import game_seeds, move_seeds
from razzle.selfplay.games import SelfPlayConfig, merge_outputs, play_games
from razzle.selfplay.replay import ReplayStore

RULES = Rules(max_turns=24)


@pytest.fixture(scope="module")
def output():
    config = SelfPlayConfig(games=6, parallel=4, temperature_turns=4)
    return play_games(UniformEvaluator(), SearchConfig(simulations=8), config, RULES, seed=1, progress=False)


def test_every_game_is_played_and_recorded(output):
    assert len(output.records) == 6
    total_actions = sum(len(record.actions) for record in output.records)
    assert len(output.samples) == total_actions  # one sample per searched position
    for record in output.records:
        assert record.position().is_terminal


def test_sample_targets_are_consistent(output):
    samples = output.samples
    assert torch.allclose(samples.policy.sum(1), torch.ones(len(samples)), atol=1e-2)
    assert not bool((samples.policy * ~samples.legal).any())
    assert set(samples.value.abs().unique().tolist()) <= {0.0, 1.0}
    assert bool(((samples.difficulty >= 0) & (samples.difficulty <= 1)).all())


def test_outcomes_match_the_records_from_the_side_to_move(output):
    first = output.records[0]
    result = first.position().result
    values = output.samples.value[: len(first.actions)]
    assert abs(float(values[0])) == abs(result)
    assert float(values[0]) == result  # the first position has Player 1 to move


class FavoursPlayerOne:
    """Uniform logits; a value of 0.6 for Player 1 (to move: 0.6, else -0.6) less 0.01 a turn."""

    def __call__(self, state):
        value = torch.where(state.to_move == 0, 0.6, -0.6) - 0.01 * state.turn
        return torch.zeros(state.to_move.shape[0], NUM_ACTIONS), value.float()


def test_search_values_are_the_roots_values_from_the_side_to_move():
    evaluator = FavoursPlayerOne()
    search, config = SearchConfig(simulations=6), SelfPlayConfig(games=3, parallel=3)
    output = play_games(evaluator, search, config, RULES, seed=4, progress=False)
    # Samples go game by game: each game's first is its start, searched with its first move's seed.
    seeds = move_seeds(game_seeds(4, torch.arange(3)), torch.zeros(3, dtype=torch.long))
    expected = MCTS(evaluator, search).search(initial_state(3, RULES), seeds, root_noise=True).root_value
    assert expected.abs().max() > 0.01
    firsts = torch.tensor([0] + [len(record.actions) for record in output.records[:2]]).cumsum(0)
    assert torch.allclose(output.samples.search_value[firsts], expected)
    assert bool((output.samples.search_value.abs() <= 1).all())


def test_game_statistics_are_in_range(output):
    stats = output.stats
    assert 0 < stats["game_length_mean"] <= RULES.max_turns
    for name in ("pass_decision_rate", "p1_win_rate", "draw_rate", "opening_diversity"):
        assert 0.0 <= stats[name] <= 1.0
    assert stats["selfplay_evals_per_s"] > 0 and stats["selfplay_games_per_s"] > 0


def test_same_seed_same_games():
    config = SelfPlayConfig(games=3, parallel=3)
    first, second = (
        play_games(UniformEvaluator(), SearchConfig(simulations=6), config, RULES, seed=5, progress=False)
        for _ in range(2)
    )
    assert [r.actions for r in first.records] == [r.actions for r in second.records]


def test_each_finished_game_is_announced():
    finished = []
    config = SelfPlayConfig(games=5, parallel=2, temperature_turns=4)
    play_games(UniformEvaluator(), SearchConfig(simulations=4), config, RULES, seed=2, progress=False, on_game=finished.append)
    assert finished == [1, 2, 3, 4, 5]


def test_outputs_played_apart_merge_into_one(output):
    config = SelfPlayConfig(games=3, parallel=3, temperature_turns=4)
    other = play_games(UniformEvaluator(), SearchConfig(simulations=8), config, RULES, seed=9, progress=False)
    merged = merge_outputs([output, other])
    assert [r.headers["Game"] for r in merged.records] == [str(n) for n in range(1, 10)]
    assert [r.actions for r in merged.records] == [r.actions for r in output.records + other.records]
    assert len(merged.samples) == len(output.samples) + len(other.samples)
    lengths = [s.length for s in output.summaries + other.summaries]
    assert merged.stats["game_length_mean"] == pytest.approx(sum(lengths) / 9)
    wins = sum(s.result == 1 for s in output.summaries + other.summaries)
    assert merged.stats["p1_win_rate"] == pytest.approx(wins / 9)
    assert merged.stats["selfplay_seconds"] == max(output.seconds, other.seconds)
    assert merged.stats["selfplay_evals_per_s"] == pytest.approx((output.evaluations + other.evaluations) / merged.seconds)


def test_replay_store_round_trip(tmp_path, output):
    store = ReplayStore(tmp_path / "replay")
    for iteration in range(3):
        store.write(iteration, output)
    assert store.iterations() == [0, 1, 2]
    assert len(Samples.load(store.folder(1) / "samples.pt")) == len(output.samples)
    assert torch.equal(searched_by(store.folder(1) / "samples.pt"), output.searched_by)
    assert [r.actions for r in store.records(2)] == [r.actions for r in output.records]
    store.remove(2)
    assert store.iterations() == [0, 1]
    assert json.loads((store.folder(1) / "stats.json").read_text())["positions"] == len(output.samples)


def test_a_crashed_write_leaves_nothing_behind(tmp_path, output, monkeypatch):
    store = ReplayStore(tmp_path / "replay")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Samples, "save", crash)
    with pytest.raises(OSError):
        store.write(0, output)
    assert store.iterations() == []
    assert list((tmp_path / "replay").iterdir()) == []


def test_leftover_staging_folders_are_cleared(tmp_path):
    (tmp_path / "replay" / ".tmp-abc").mkdir(parents=True)
    ReplayStore(tmp_path / "replay")
    assert list((tmp_path / "replay").iterdir()) == []


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="selfplay.games"):
        SelfPlayConfig(games=0)


def test_shards_without_model_tags_still_load(tmp_path, output):
    output.samples.save(tmp_path / "old.pt")
    assert searched_by(tmp_path / "old.pt") is None
    assert len(Samples.load(tmp_path / "old.pt")) == len(output.samples)
