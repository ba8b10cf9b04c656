"""Every rule of RULES.md on a constructed position."""

import pytest

from razzle.game import IllegalMoveError, Position, Rules

P2_AWAY = ["a8", "b8", "e6", "f8", "g8"]


def forced_setup(eligible=("d2",), p2=P2_AWAY) -> Position:
    """Player 2 to move; its knight on e6 can land on c5, next to Player 1's ball on d4."""
    return Position.from_pieces((["a1", "b1", "d4", "d2", "g1"], p2), balls=("d4", "a8"), eligible=eligible, to_move=1)


def test_knight_landing_next_to_the_ball_forces_a_pass():
    position = forced_setup().play("e6-c5")
    assert position.forced
    assert position.legal_moves() == ["d4-d2"]
    with pytest.raises(IllegalMoveError, match="forced to pass: the opponent's knight landed on c5"):
        position.play("b1-c3")
    after_pass = position.play("d4-d2")
    assert after_pass.mid_chain and "end" in after_pass.legal_moves()
    assert not any(move.startswith("b1") for move in after_pass.legal_moves())


def test_no_force_when_the_opponent_piece_was_already_adjacent():
    position = forced_setup(p2=["a8", "b8", "c5", "e6", "g8"]).play("e6-g5")
    assert not position.forced
    assert "b1-c3" in position.legal_moves() and "d4-d2" in position.legal_moves()


def test_no_force_after_a_pass_chain():
    position = Position.from_pieces(
        (["a1", "b1", "d4", "d2", "g1"], ["a8", "b8", "c5", "e6", "g8"]),
        balls=("d4", "a8"),
        eligible=("d2", "b8"),
        to_move=1,
    )
    position = position.play("a8-b8").play("end")
    assert not position.forced
    assert "b1-c3" in position.legal_moves()


def test_no_force_when_no_pass_is_legal():
    position = forced_setup(eligible=()).play("e6-c5")
    assert not position.forced
    assert "b1-c3" in position.legal_moves()
    assert not any(move.startswith("d4") for move in position.legal_moves())


def test_forced_flag_from_a_constructed_last_knight():
    position = Position.from_pieces(
        (["a1", "b1", "d4", "d2", "g1"], ["a8", "b8", "c5", "f8", "g8"]),
        balls=("d4", "a8"),
        eligible=("d2",),
        last_knight="c5",
    )
    assert position.forced and position.legal_moves() == ["d4-d2"]


def test_passes_are_blocked_by_the_first_piece_on_the_line():
    position = Position.from_pieces(
        (["b1", "c1", "d1", "d3", "f1"], ["d2", "b8", "c8", "e8", "f8"]), balls=("d1", "b8"), eligible=("d3",)
    )
    assert not any(move.startswith("d1") for move in position.legal_moves())
    with pytest.raises(IllegalMoveError, match="blocked by the piece on d2"):
        position.play("d1-d3")
    with pytest.raises(IllegalMoveError, match="holds an opponent's piece"):
        position.play("d1-d2")


def test_an_ineligible_own_piece_blocks_and_cannot_receive():
    position = Position.from_pieces(
        (["b1", "c1", "d1", "d2", "d4"], ["a8", "b8", "c8", "e8", "f8"]), balls=("d1", "b8"), eligible=("d4",)
    )
    with pytest.raises(IllegalMoveError, match="blocked by the piece on d2"):
        position.play("d1-d4")
    with pytest.raises(IllegalMoveError, match="the piece on d2 is ineligible"):
        position.play("d1-d2")
    with pytest.raises(IllegalMoveError, match="not on a straight line"):
        position.play("d1-e3")


def test_a_knight_move_restores_eligibility():
    position = Position.initial()
    for action in ["e1-d3", "b8-a6", "d1-d3", "end", "a6-b4"]:
        position = position.play(action)
    assert "d1" not in position.eligible and "d3" in position.eligible
    with pytest.raises(IllegalMoveError, match="ineligible"):
        position.play("d3-d1")
    position = position.play("d1-c3").play("b4-a6")
    assert "c3" in position.eligible
    assert "d3-c3" in position.legal_moves()


def test_a_pass_to_the_far_rank_wins_in_the_middle_of_a_chain():
    position = Position.from_pieces(
        (["b1", "c1", "d5", "d7", "e8"], ["a2", "a3", "a4", "g5", "g6"]),
        balls=("d5", "a2"),
        eligible=("d7", "e8"),
    )
    position = position.play("d5-d7")
    assert position.mid_chain and not position.is_terminal
    position = position.play("d7-e8")
    assert position.is_terminal and position.winner == 0 and position.result == 1
    assert position.legal_moves() == []
    with pytest.raises(IllegalMoveError, match="the game is over"):
        position.play("end")


def test_player_two_wins_on_rank_one():
    position = Position.from_pieces(
        (["a7", "b7", "c7", "g4", "g3"], ["d2", "b8", "c8", "d1", "f8"]),
        balls=("a7", "d2"),
        eligible=("d1",),
        to_move=1,
    )
    position = position.play("d2-d1")
    assert position.winner == 1 and position.result == -1


def test_turn_limit_draw():
    position = Position.initial(Rules(max_turns=4))
    for action in ["b1-c3", "b8-c6", "c1-b3", "c8-b6"]:
        assert not position.is_terminal
        position = position.play(action)
    assert position.is_terminal and position.winner is None and position.result == 0


SHUFFLE = ["b1-c3", "b8-c6", "c3-b1", "c6-b8"]


def test_threefold_repetition_is_a_draw():
    position = Position.initial()
    turns = (SHUFFLE * 3)[:10]
    for action in turns[:9]:
        position = position.play(action)
    assert not position.is_terminal  # after b8-c6 the same position stands a second time only
    position = position.play(turns[9])
    assert position.is_terminal and position.result == 0 and position.turn == 10


def test_repetition_draw_can_be_switched_off():
    position = Position.initial(Rules(repetition_draw=False))
    for action in SHUFFLE * 3:
        position = position.play(action)
    assert not position.is_terminal


def test_rules_refuse_bad_settings():
    with pytest.raises(ValueError, match="max_turns"):
        Rules(max_turns=0)
    with pytest.raises(ValueError, match="repetition_draw"):
        Rules(repetition_draw="yes")
