"""Matches between players, and the strength of the search with a uniform evaluator."""

import pytest
import torch

from razzle.game import Rules
from razzle.game.engine import initial_state
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.network import RazzleNet
from razzle.search import MatchResult, MCTSPlayer, RandomPlayer, SearchConfig, UniformEvaluator, play_match


class RecordingPlayer(RandomPlayer):
    """A random player that notes which side it was asked to move for."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.sides: set[int] = set()
        self.batch_sizes: list[int] = []

    def __call__(self, state):
        self.sides.update(state.to_move.tolist())
        self.batch_sizes.append(state.batch_size)
        return super().__call__(state)


def test_match_alternates_colours_and_counts_every_game():
    first, second = RecordingPlayer(1), RecordingPlayer(2)
    result = play_match(first, second, games=6, rules=Rules(max_turns=30))
    assert result.games == 6
    assert first.sides == {0, 1} and second.sides == {0, 1}
    assert max(first.batch_sizes) <= 6


def test_a_player_is_only_asked_about_its_own_games():
    class OnlyPlayer1(RandomPlayer):
        def __call__(self, state):
            assert bool((state.to_move == 0).all())
            return super().__call__(state)

    class OnlyPlayer2(RandomPlayer):
        def __call__(self, state):
            assert bool((state.to_move == 1).all())
            return super().__call__(state)

    # With one game the first player is always Player 1.
    result = play_match(OnlyPlayer1(3), OnlyPlayer2(4), games=1, rules=Rules(max_turns=40))
    assert result.games == 1


def test_score_and_interval():
    result = MatchResult(wins=30, draws=10, losses=10)
    assert result.score == pytest.approx(0.7)
    # Wilson interval, worked by hand: centre (0.7 + 1.96^2/100) / (1 + 1.96^2/50) = 0.6857,
    # half-width 1.96 * sqrt(0.21/50 + 1.96^2/10000) / 1.0768 = 0.1232.
    assert result.score_interval() == pytest.approx((0.5625, 0.8090), abs=1e-3)
    low, high = MatchResult(wins=100, draws=0, losses=0).score_interval()
    assert high == pytest.approx(1.0) and low == pytest.approx(0.9630, abs=1e-3)
    with pytest.raises(ValueError, match="at least one game"):
        play_match(RandomPlayer(), RandomPlayer(), games=0)


@pytest.fixture
def one_thread():
    """The searches here work on tensors of a few games: a second intra-op thread only
    adds synchronisation (and on a busy machine, a lot of it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_uniform_prior_search_with_200_simulations_beats_a_random_player(one_thread):
    searcher = MCTSPlayer(UniformEvaluator(), SearchConfig(simulations=200), seed=1)
    result = play_match(searcher, RandomPlayer(seed=2), games=50)
    assert result.wins >= 45, result


def test_opening_turns_vary_the_first_moves_where_the_most_visited_move_would_not():
    torch.manual_seed(0)
    evaluator = NetworkEvaluator(RazzleNet.of_size("tiny"))
    config = SearchConfig(simulations=16)
    start = initial_state(8)
    best = MCTSPlayer(evaluator, config, seed=3)(start)
    sampled = MCTSPlayer(evaluator, config, seed=3, opening_turns=1)(start)
    assert len(set(best.tolist())) == 1
    assert len(set(sampled.tolist())) >= 3
    start.turn.fill_(1)
    assert MCTSPlayer(evaluator, config, seed=3, opening_turns=1)(start).tolist() == best.tolist()


def test_a_negative_number_of_opening_turns_is_refused():
    with pytest.raises(ValueError, match="opening_turns"):
        MCTSPlayer(UniformEvaluator(), opening_turns=-1)
