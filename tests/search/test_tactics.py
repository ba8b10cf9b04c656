"""The search sees the game's tactics: wins through pass chains, threats, and the signs
of values across a chain (same side moves again) and across a turn change."""

import torch

from razzle.game import Position, step
from razzle.search import MCTS, SearchConfig, UniformEvaluator, choose_actions

# Player 1 wins with d1-d3-a6-c8 (three passes; no shorter win exists).
CHAIN = dict(
    pieces=(["d1", "d3", "a6", "c8", "g1"], ["b8", "d8", "e8", "f8", "g6"]),
    balls=("d1", "d8"),
    eligible=("d3", "a6", "c8"),
)
# Player 2 threatens d8-d1 (a pass onto rank 1); Player 1 can only block with a knight.
THREAT = dict(
    pieces=(["a1", "b3", "f5", "g1", "a4"], ["d8", "d1", "a8", "g8", "b7"]),
    balls=("a1", "d8"),
    eligible=("d1",),
)
# After d1-d2 Player 1 can only play `end`; then Player 2 wins with g8-g4-g1.
LOST_AFTER_END = dict(
    pieces=(["d1", "d2", "a1", "b1", "c1"], ["g8", "g4", "g1", "a8", "b8"]),
    balls=("d1", "g8"),
    eligible=("d2", "g4", "g1"),
)


def search(position: Position, simulations: int, seed: int = 0):
    mcts = MCTS(UniformEvaluator(), SearchConfig(simulations=simulations))
    return mcts.search(position.state, torch.tensor([seed]))


def slot_of(result, position: Position, text: str) -> int:
    return int((result.actions[0] == position.action_index(text)).nonzero()[0, 0])


def test_finds_a_winning_pass_chain_and_plays_it_to_the_end():
    position = Position.from_pieces(**CHAIN)
    result = search(position, 200)
    line = [position.action_text(a) for a in result.pv[0, :1].tolist()]
    assert line == ["d1-d3"]
    chain = []
    while not position.is_terminal:
        result = search(position, 200)
        action = int(choose_actions(result)[0])
        chain.append(position.action_text(action))
        position = position.play_index(action)
        assert position.to_move == 0, f"the turn ended without a win: {chain}"
    assert chain == ["d1-d3", "d3-a6", "a6-c8"]
    assert position.winner == 0


def test_principal_variation_is_the_whole_chain():
    position = Position.from_pieces(**CHAIN)
    result = search(position, 400)
    pv = result.pv[0].tolist()
    texts = []
    for action in pv[:3]:
        texts.append(position.action_text(action))
        position = position.play_index(action)
    assert texts == ["d1-d3", "d3-a6", "a6-c8"]
    assert pv[3:] == [-1] * (len(pv) - 3)


def _losing_moves(position: Position) -> set[str]:
    """Player 1's moves after which Player 2 wins with a single pass (brute force)."""
    losing = set()
    for move in position.legal_moves():
        after = position.play(move)
        state = after.state
        replies = state.actions[0][state.legal[0]]
        stepped = step(state.index(torch.zeros(len(replies), dtype=torch.long)), replies)
        if bool((stepped.winner == 1).any()):
            losing.add(move)
    return losing


def test_blocks_an_immediate_threat():
    position = Position.from_pieces(**THREAT)
    losing = _losing_moves(position)
    assert losing and losing != set(position.legal_moves()), "the puzzle needs a threat and a defence"
    for seed in range(3):
        result = search(position, 800, seed)
        chosen = position.action_text(int(choose_actions(result)[0]))
        assert chosen not in losing, f"seed {seed}: {chosen} lets Player 2 win"


def test_a_winning_pass_in_mid_chain_is_worth_exactly_one():
    position = Position.from_pieces(**CHAIN).play("d1-d3").play("d3-a6")
    assert position.mid_chain and position.to_move == 0
    result = search(position, 50)
    assert result.q[0, slot_of(result, position, "a6-c8")].item() == 1.0
    assert result.root_value[0].item() > 0.8


def test_value_keeps_its_sign_along_a_chain_of_the_same_player():
    position = Position.from_pieces(**CHAIN)
    result = search(position, 400)
    # The first pass leads to a mid-chain node where Player 1 moves again: its value is
    # credited to Player 1 unchanged (edge sign +1).
    assert result.q[0, slot_of(result, position, "d1-d3")].item() > 0.8
    assert result.root_value[0].item() > 0.5


def test_value_flips_sign_when_the_turn_passes_to_the_opponent():
    position = Position.from_pieces(**LOST_AFTER_END).play("d1-d2")
    assert position.legal_moves() == ["end"]
    result = search(position, 400)
    # After `end` Player 2 wins with a two-pass chain (inside which the sign stays +1
    # for Player 2); seen from Player 1 that is a loss (edge sign -1).
    assert result.q[0, slot_of(result, position, "end")].item() < -0.8
    assert result.root_value[0].item() < -0.8
    after_end = position.play("end")
    texts = []
    for action in result.pv[0, 1:3].tolist():
        texts.append(after_end.action_text(action))
        after_end = after_end.play_index(action)
    assert texts == ["g8-g4", "g4-g1"]
    assert after_end.winner == 1
