"""Action text, pass chains and game records."""

import pytest
import torch

from razzle.game import Position, Rules
from razzle.game.engine import random_actions
from razzle.game.notation import GameRecord, GameRecordError, split_turn


def random_game(seed: int, rules: Rules | None = None) -> list[str]:
    generator = torch.Generator().manual_seed(seed)
    position, actions = Position.initial(rules), []
    while not position.is_terminal:
        action = position.action_text(int(random_actions(position.state, generator)))
        actions.append(action)
        position = position.play(action)
    return actions


@pytest.mark.parametrize("seed", range(6))
def test_records_round_trip(seed):
    actions = random_game(seed)
    record = GameRecord(actions, headers={"Event": "test"})
    text = record.to_text()
    again = GameRecord.from_text(text)
    assert again.actions == actions
    assert again.headers == {"Event": "test"}
    assert again.to_text() == text


def test_record_shows_chains_as_the_ball_path():
    position = Position.initial()
    actions = ["e1-d3", "b8-a6", "d1-d3", "end"]
    text = GameRecord(actions).to_text()
    assert "1. e1-d3 b8-a6\n2. d1-d3\n" in text
    assert '[Result "*"]' in text


def test_an_open_chain_round_trips():
    actions = ["e1-d3", "b8-a6", "d1-d3"]
    text = GameRecord(actions).to_text()
    assert "2. d1-d3+" in text
    assert GameRecord.from_text(text).actions == actions


def test_a_winning_chain_has_no_end():
    position = Position.from_pieces(
        (["b1", "c1", "d5", "d7", "e8"], ["a2", "a3", "a4", "g5", "g6"]), balls=("d5", "a2"), eligible=("d7", "e8")
    )
    assert position.play("d5-d7").play("d7-e8").is_terminal
    assert split_turn("d5-d7-e8") == ["d5-d7", "d7-e8"]


def test_rules_travel_with_the_record():
    actions = random_game(1, Rules(max_turns=12, repetition_draw=False))
    text = GameRecord(actions, Rules(max_turns=12, repetition_draw=False)).to_text()
    assert '[Rules "max_turns=12 repetition_draw=false"]' in text
    assert GameRecord.from_text(text).rules == Rules(max_turns=12, repetition_draw=False)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[Result "*"]\n1. b1-c4', r"turn 1 \('b1-c4'\).*not a knight's jump"),
        ('[Result "1-0"]\n1. b1-c3', "says Result '1-0' but its moves give '\\*'"),
        ('[Rules "max_turns=x"]\n', "unknown rules setting"),
        ("[Result *]\n", "malformed header"),
        ("1. b1-z9", "unknown square 'z9'"),
        ("1. end", "'end' finishes a pass chain"),
    ],
)
def test_bad_records_are_refused_with_the_reason(text, message):
    with pytest.raises(GameRecordError, match=message):
        GameRecord.from_text(text)


def test_comments_and_move_numbers_are_ignored():
    record = GameRecord.from_text('; a short game\n[Result "*"]\n1. b1-c3 ; develop\nb8-c6\n')
    assert record.actions == ["b1-c3", "b8-c6"]
