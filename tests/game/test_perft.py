"""Perft counts of RULES.md."""

import pytest

from razzle.game import Position
from razzle.game.perft import perft


def test_initial_legal_actions():
    assert Position.initial().legal_moves() == (
        "b1-a3 b1-c3 b1-d2 c1-a2 c1-b3 c1-d3 c1-e2 e1-c2 e1-d3 e1-f3 e1-g2 f1-d2 f1-e3 f1-g3".split()
    )


def test_atomic_perft():
    assert perft(4) == [14, 196, 3164, 49280]


def test_turn_perft():
    assert perft(4, turns=True) == [14, 196, 3164, 50976]


def test_small_chunks_give_the_same_counts():
    assert perft(4, turns=True, chunk=97) == [14, 196, 3164, 50976]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        perft(0)
