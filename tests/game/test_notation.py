"""Action text, pass chains and game records."""

import pytest
import torch

from razzle.game import Position, Rules
from razzle.game.engine import random_actions
from razzle.game.notation import Annotation, GameRecord, GameRecordError, RecordOutline, split_turn


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


CHAIN_GAME = ["c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3", "b3-f3", "end", "f8-g6"]
CHAIN_NOTES = [
    Annotation(0.0123, (("c1-b3", 0.376), ("e1-d3", 0.25))),
    None,
    Annotation(-0.5),
    Annotation(1, (("g6-f8", 1.0),)),
    Annotation(0.1, (("d1-b3", 0.62),)),
    Annotation(0.2, (("b3-f3", 0.75), ("end", 0.25))),
    None,
    Annotation(-0.0001, (("f8-g6", 0.5),)),
]


def test_annotated_records_round_trip_one_turn_per_line():
    record = GameRecord(CHAIN_GAME, headers={"Event": "test"}, annotations=CHAIN_NOTES)
    text = record.to_text()
    assert "1. c1-b3 {v=+0.012 c1-b3 0.38, e1-d3 0.25}\n1... f8-g6\n2. e1-f3 {v=-0.500}\n" in text
    assert "3. d1-b3-f3 {v=+0.100 d1-b3 0.62} {v=+0.200 b3-f3 0.75, end 0.25} {}\n" in text
    assert "3... f8-g6 {v=+0.000 f8-g6 0.50}\n" in text
    again = GameRecord.from_text(text)
    assert again == record and again.to_text() == text
    assert again.annotations[0] == Annotation(0.012, (("c1-b3", 0.38), ("e1-d3", 0.25)))


def test_an_annotated_open_chain_round_trips():
    record = GameRecord(CHAIN_GAME[:5], annotations=[None] * 4 + [Annotation(0.25, (("d1-b3", 0.5),))])
    text = record.to_text()
    assert "3. d1-b3+ {v=+0.250 d1-b3 0.50}" in text
    assert GameRecord.from_text(text) == record


def test_records_without_annotations_read_as_before():
    record = GameRecord.from_text(GameRecord(CHAIN_GAME).to_text())
    assert record.actions == CHAIN_GAME and record.annotations == []
    assert GameRecord(CHAIN_GAME, annotations=[None] * len(CHAIN_GAME)).annotations == []


@pytest.mark.parametrize(
    "move_text, message",
    [
        ("1. c1-b3 {v=0.5}", r"action 1 \('c1-b3'\): annotation \{v=0.5\}: expected \{v=VALUE MOVE SHARE"),
        ("1. c1-b3 f8-g6 {v=+1.500}", r"action 2 \('f8-g6'\): .*the value \+1.500 is outside \[-1, 1\]"),
        ("1. c1-b3 {v=+0.1 c1-z9 0.5}", r"action 1 .*unknown square 'z9'"),
        ("1. c1-b3 {v=+0.1 c1-b3 1.50}", r"action 1 .*visit share 1.50 of c1-b3 is above 1"),
        ("1. c1-b3 {v=+0.1 c1-b3 0.20, b1-a3 0.50}", "action 1 .*most visited first"),
        ("1. c1-b3 {v=+0.1 c1-b3 0.5,}", r"action 1 .*'c1-b3 0.5,' is not a move and its visit share"),
        ("1. c1-b3 {v=+0.1} {}", r"turn 1 \('c1-b3'\) has 2 annotations but one per action is needed: c1-b3"),
        ("1. c1-b3 f8-g6\n2. e1-f3 g6-f8\n3. d1-b3-f3 {} {}", "turn 5 .* needed: d1-b3, b3-f3, end"),
        ("{v=+0.1} 1. c1-b3", r"line 1: annotation \{v=\+0.1\} before any turn"),
        ("1. c1-b3 {v=+0.1", "line 1: unbalanced brace"),
    ],
)
def test_malformed_annotations_are_refused_naming_the_action(move_text, message):
    with pytest.raises(GameRecordError, match=message):
        GameRecord.from_text(move_text)


def test_an_outline_reads_what_a_list_shows_without_playing_the_moves():
    record = GameRecord(["c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3", "b3-f3", "end"], headers={"Game": "4"})
    outline = RecordOutline.from_text(record.to_text())
    assert (outline.headers, outline.result, outline.turns) == ({"Game": "4"}, "*", 5)
    with pytest.raises(GameRecordError, match="malformed header"):
        RecordOutline.from_text('[Result "*"\n1. c1-b3')
