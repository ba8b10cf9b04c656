"""A self-play session: games carried over between calls, reproducible from their seeds."""

from dataclasses import replace

import pytest
import torch

from razzle.game import Rules
from razzle.game.actions import NUM_ACTIONS
from razzle.search import SearchConfig, UniformEvaluator
from razzle.selfplay.games import SelfPlayConfig, SelfPlaySession, play_games

RULES = Rules(max_turns=16)
SEARCH = SearchConfig(simulations=6)
CONFIG = SelfPlayConfig(games=3, parallel=4, temperature_turns=4)


def _by_seed(outputs) -> dict[str, list[str]]:
    games = {}
    for output in outputs:
        for record in output.records:
            assert record.headers["Seed"] not in games, "a game was returned twice"
            games[record.headers["Seed"]] = record.actions
    return games


class Decisive:
    """Uniform logits, the side to move always winning: another model than the uniform one."""

    def __call__(self, state):
        return torch.zeros(state.to_move.shape[0], NUM_ACTIONS), torch.full(state.to_move.shape, 0.5)


def test_carried_over_games_are_the_games_of_their_seeds():
    session = SelfPlaySession(SEARCH, CONFIG, RULES, seed=11)
    calls = [session.play(UniformEvaluator(), 3, progress=False) for _ in range(3)]
    alone = play_games(UniformEvaluator(), SEARCH, replace(CONFIG, games=9, parallel=2), RULES, seed=11, progress=False)
    carried = _by_seed(calls)
    assert len(carried) == 9
    played_alone = _by_seed([alone])
    shared = set(carried) & set(played_alone)
    assert len(shared) >= 6  # the same numbered games, played in other slots and batches
    assert all(carried[seed] == played_alone[seed] for seed in shared)


def test_a_call_returns_only_finished_games_and_their_samples():
    session = SelfPlaySession(SEARCH, CONFIG, RULES, seed=3)
    first = session.play(UniformEvaluator(), 3, model=0, progress=False)
    assert len(first.records) == len(first.summaries) == 3
    assert all(record.position().is_terminal for record in first.records)
    assert len(first.samples) == sum(len(record.actions) for record in first.records)
    assert first.stats["game_length_mean"] == pytest.approx(sum(s.length for s in first.summaries) / 3)
    assert len(session.in_flight) >= 1  # the batch stayed full: games go on into the next call
    second = session.play(Decisive(), 3, model=1, progress=False)
    assert len(second.samples) == sum(len(record.actions) for record in second.records)
    assert set(second.searched_by.tolist()) <= {0, 1}
    spanning = [r for r in second.records if r.headers["Models"] == "0-1"]
    assert spanning, "a game begun by model 0 finished with model 1"


def test_a_restored_session_plays_the_games_in_flight_again_and_no_game_twice():
    uninterrupted = SelfPlaySession(SEARCH, CONFIG, RULES, seed=5)
    calls = [uninterrupted.play(UniformEvaluator(), 3, progress=False) for _ in range(3)]

    killed = SelfPlaySession(SEARCH, CONFIG, RULES, seed=5)
    before = killed.play(UniformEvaluator(), 3, progress=False)
    saved = killed.checkpoint()
    assert saved["restart"] == killed.in_flight and saved["next_game"] > 3
    restored = SelfPlaySession(SEARCH, CONFIG, RULES, **saved)
    after = [restored.play(UniformEvaluator(), 3, progress=False) for _ in range(2)]
    games = _by_seed([before, *after])
    expected = _by_seed(calls)
    # No game lost or repeated: the in-flight ones start over from their seeds and, with
    # the same network, play exactly the same moves.
    assert games == expected


def test_a_limited_session_says_when_it_has_no_games_left():
    session = SelfPlaySession(SEARCH, CONFIG, RULES, seed=1, game_limit=2)
    session.play(UniformEvaluator(), 2, progress=False)
    with pytest.raises(ValueError, match="limit of 2"):
        session.play(UniformEvaluator(), 1, progress=False)
