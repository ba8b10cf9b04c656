"""The single-game view: its API, immutability and the reasons for refusals."""

import pytest

from razzle.game import IllegalMoveError, Position, Rules


def test_play_returns_a_new_position_and_leaves_the_old_one():
    start = Position.initial(Rules())
    after = start.play("b1-c3")
    assert start.to_move == 0 and after.to_move == 1
    assert "b1" in start.pieces(0) and "c3" in after.pieces(0)
    assert start.legal_moves()[0] == "b1-a3"
    assert start != after and start == Position.initial()


def test_facts_of_the_initial_position():
    position = Position.initial()
    assert position.balls == ("d1", "d8")
    assert position.eligible == []
    assert not position.mid_chain and not position.forced
    assert not position.is_terminal and position.winner is None and position.result is None
    assert position.turn == 0 and position.last_knight is None


def test_diagram_marks_balls_and_ineligible_pieces():
    text = str(Position.initial().play("c1-b3"))
    assert text.splitlines()[0] == "8  .  o' o' O' o' o' . "
    assert "x " in text.splitlines()[5]  # b3 is eligible after its knight move
    assert "Player 2 (o) to move" in text


@pytest.mark.parametrize(
    "action, reason",
    [
        ("b2-b3", "there is no piece on b2"),
        ("z9-a1", "unknown square 'z9'"),
        ("b8-c6", "b8 holds Player 2's piece and it is Player 1's turn"),
        ("c1-c3", "not a knight's jump"),
        ("d1-e1", "the piece on e1 is ineligible"),
        ("d1-g4", "there is no piece on g4 to receive the ball"),  # an empty line to the board's edge
        ("d1-d4", "there is no piece on d4 to receive the ball"),
        ("end", "no pass has been made"),
        ("b1-c3-d5", "whole pass chain"),
        ("hello", "expected a knight move"),
    ],
)
def test_refusals_name_the_action_and_the_reason(action, reason):
    with pytest.raises(IllegalMoveError) as error:
        Position.initial().play(action)
    assert repr(action) in str(error.value) and reason in str(error.value)


def test_occupied_destination_and_knight_after_a_pass():
    position = Position.initial()
    for action in ["c1-a2", "b8-a6", "b1-c3", "a6-b8"]:
        position = position.play(action)
    with pytest.raises(IllegalMoveError, match="c3 is occupied"):
        position.play("a2-c3")
    position = Position.initial()
    for action in ["e1-d3", "b8-a6", "d1-d3"]:
        position = position.play(action)
    with pytest.raises(IllegalMoveError, match="no knight move after a pass"):
        position.play("b1-c3")


def test_actions_are_case_and_space_insensitive():
    assert Position.initial().play(" B1-C3 ").to_move == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pieces": (["b1", "c1", "d1", "e1"], ["b8", "c8", "d8", "e8", "f8"])}, "five pieces"),
        ({"balls": ("a5", "d8")}, "ball on a5 is not on one of its pieces"),
        ({"eligible": ("a5",)}, "eligible squares must hold pieces"),
    ],
)
def test_constructed_positions_are_checked(kwargs, message):
    arguments = {"pieces": (["b1", "c1", "d1", "e1", "f1"], ["b8", "c8", "d8", "e8", "f8"]), "balls": ("d1", "d8")}
    with pytest.raises(ValueError, match=message):
        Position.from_pieces(**{**arguments, **kwargs})
