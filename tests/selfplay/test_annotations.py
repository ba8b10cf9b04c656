"""Self-play records carry, per action, what the search thought before it: the root value
and the most visited actions with their visit shares."""

import pytest
import torch

from razzle.game import Rules
from razzle.game.actions import NUM_ACTIONS
from razzle.game.engine import initial_state
from razzle.game.notation import GameRecord
from razzle.game.position import Position
from razzle.search import MCTS, SearchConfig
from razzle.search.streams import game_seeds, move_seeds
from razzle.selfplay.games import SelfPlayConfig, play_games
from razzle.selfplay.records import TOP_MOVES, MoveLog

RULES = Rules(max_turns=16)
SEARCH = SearchConfig(simulations=16)
SEED = 4
ROUNDING_VALUE, ROUNDING_SHARE = 5.1e-4, 5.1e-3  # half the last written decimal, and a hair


class Opinionated:
    """Fixed uneven logits and a value that depends on where the pieces stand, so that
    visits and root values differ from position to position."""

    def __init__(self):
        self.logits = 2 * torch.randn(NUM_ACTIONS, generator=torch.Generator().manual_seed(0))

    def __call__(self, state):
        value = 0.8 * torch.sin(state.squares.sum((1, 2)).float() + state.to_move.float())
        return self.logits.expand(state.batch_size, NUM_ACTIONS), value


@pytest.fixture(scope="module")
def output():
    config = SelfPlayConfig(games=2, parallel=2, temperature_turns=4)
    return play_games(Opinionated(), SEARCH, config, RULES, seed=SEED, progress=False)


def test_the_first_annotations_are_the_search_of_the_start(output):
    seeds = move_seeds(game_seeds(SEED, torch.arange(2)), torch.zeros(2, dtype=torch.long))
    result = MCTS(Opinionated(), SEARCH).search(initial_state(2, RULES), seeds, root_noise=True)
    start = Position.initial(RULES)
    for game, record in enumerate(output.records):
        visits = result.visits[game].tolist()
        ranked = sorted((slot for slot, n in enumerate(visits) if n > 0), key=lambda slot: (-visits[slot], slot))
        expected = [
            (start.action_text(int(result.actions[game, slot])), visits[slot] / sum(visits))
            for slot in ranked[:TOP_MOVES]
        ]
        note = record.annotations[0]
        assert note.value == pytest.approx(float(result.root_value[game]), abs=ROUNDING_VALUE)
        assert [move for move, _ in note.top] == [move for move, _ in expected]
        assert [share for _, share in note.top] == pytest.approx([share for _, share in expected], abs=ROUNDING_SHARE)
    assert abs(float(result.root_value[0])) > 0.01  # the check above compares a value, not zeros


def test_every_searched_action_is_annotated_with_its_search(output):
    values = output.samples.search_value.tolist()
    policies = output.samples.policy
    position_index = 0
    for record in output.records:
        assert len(record.annotations) == len(record.actions)
        position = Position.initial(RULES)
        for action, note in zip(record.actions, record.annotations):
            assert -1 <= note.value <= 1
            assert note.value == pytest.approx(values[position_index], abs=ROUNDING_VALUE)
            shares = [share for _, share in note.top]
            assert shares == sorted(shares, reverse=True) and all(0 < s <= 1 for s in shares)
            assert sum(shares) <= 1 + ROUNDING_SHARE * TOP_MOVES
            top3 = policies[position_index].topk(TOP_MOVES).values
            assert shares == pytest.approx(top3[top3 > 0].tolist(), abs=ROUNDING_SHARE)
            assert {move for move, _ in note.top} <= set(position.legal_moves())
            position = position.play(action)
            position_index += 1
    assert position_index == len(output.samples)


def test_annotated_records_round_trip_through_text(output):
    for record in output.records:
        text = record.to_text()
        assert "{v=" in text
        again = GameRecord.from_text(text)
        assert again == record and again.to_text() == text


def test_the_log_grows_past_its_capacity_keeping_every_column():
    start = initial_state(2, RULES)
    result = MCTS(Opinionated(), SEARCH).search(start, torch.arange(2), root_noise=True)
    log = MoveLog(2, start.device, capacity=2)
    slots = torch.arange(2)
    for _ in range(5):
        log.record(slots, start, result.actions[:, 0], result)
    logged = log.game(1)
    assert len(logged.codes) == len(logged.values) == len(logged.top_codes) == len(logged.top_shares) == 5
    notes = logged.annotations()
    assert notes[0] == notes[4] and notes[4].value == round(float(result.root_value[1]), 3)
    assert log.codes.shape[1] == 8
