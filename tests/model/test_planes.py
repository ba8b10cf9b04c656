import torch
from dataclasses import replace

from razzle.game import Position, Rules
from razzle.game.board import NUM_SQUARES, parse_square
from razzle.game.engine import derive_legal
from razzle.game.symmetry import mirror_state
from razzle.model.planes import NUM_INPUT_PLANES, PLANE_NAMES, encode_states, mirror_planes
from razzle.model.policy import legal_mask, mirror_policy

REPETITION = PLANE_NAMES.index("repetition")


def plane(position: Position, name: str) -> torch.Tensor:
    return encode_states(position.state)[0, PLANE_NAMES.index(name)]


def marked(position: Position, name: str) -> set[str]:
    """Squares (canonical names) where a plane is 1."""
    flat = plane(position, name).flatten()
    files, ranks = "abcdefg", "12345678"
    return {files[s % 7] + ranks[s // 7] for s in range(NUM_SQUARES) if flat[s] == 1}


def test_initial_position_planes():
    position = Position.initial()
    planes = encode_states(position.state)
    assert planes.shape == (1, NUM_INPUT_PLANES, 8, 7) and planes.dtype == torch.float32
    assert marked(position, "own_pieces") == {"b1", "c1", "d1", "e1", "f1"}
    assert marked(position, "own_ball") == {"d1"}
    assert marked(position, "opponent_pieces") == {"b8", "c8", "d8", "e8", "f8"}
    assert marked(position, "opponent_ball") == {"d8"}
    for name in ("own_eligible", "opponent_eligible", "opponent_last_knight", "mid_chain", "forced", "turn_limit"):
        assert plane(position, name).sum() == 0, name
    assert (plane(position, "ones") == 1).all()


def test_player_two_sees_the_board_turned_so_it_plays_up():
    position = Position.initial().play("b1-c3")
    assert position.to_move == 1
    # Player 2's pieces b8-f8 turn into b1-f1; Player 1's c3 knight lands on e6.
    assert marked(position, "own_pieces") == {"b1", "c1", "d1", "e1", "f1"}
    assert marked(position, "own_ball") == {"d1"}
    assert marked(position, "opponent_pieces") == {"b8", "c8", "d8", "e8", "e6"}
    assert marked(position, "opponent_eligible") == {"e6"}
    assert marked(position, "opponent_last_knight") == {"e6"}
    assert torch.allclose(plane(position, "turn_limit"), torch.tensor(1 / 200))


def forced_position() -> Position:
    # Player 2 has just jumped to c2, next to Player 1's ball on d1, and d1-e1 is open.
    return Position.from_pieces(
        pieces=(["b1", "c1", "d1", "e1", "f1"], ["c2", "b8", "c8", "e8", "f8"]),
        balls=("d1", "b8"),
        eligible=("e1", "c2"),
        last_knight="c2",
        turn=150,
    )


def test_forced_pass_last_knight_and_turn_limit_planes():
    position = forced_position()
    assert position.forced
    assert marked(position, "opponent_last_knight") == {"c2"}
    assert marked(position, "own_eligible") == {"e1"}
    assert marked(position, "opponent_eligible") == {"c2"}
    assert (plane(position, "forced") == 1).all()
    assert torch.allclose(plane(position, "turn_limit"), torch.tensor(0.75))


def test_mid_chain_plane():
    position = forced_position().play("d1-e1")
    assert position.mid_chain
    assert (plane(position, "mid_chain") == 1).all()
    assert marked(position, "own_ball") == {"e1"}
    assert plane(position, "forced").sum() == 0
    assert plane(position, "opponent_last_knight").sum() == 0


def test_repetition_plane_counts_earlier_occurrences():
    shuffle = ["b1-c3", "b8-c6", "c3-b1", "c6-b8"]
    for rules, expected in ((Rules(), 0.5), (Rules(repetition_draw=False), 0.0)):
        position = Position.initial(rules)
        for action in shuffle:
            position = position.play(action)
        assert (plane(position, "repetition") == 0).all()
        for action in shuffle:
            position = position.play(action)
        assert (plane(position, "repetition") == expected).all()


def test_planes_depend_only_on_the_position_seen_by_the_side_to_move(positions):
    """Swapping the players and turning the board gives the same position for the other
    side: the planes and legal actions must not change."""
    rotate = lambda sq: torch.where(sq == NUM_SQUARES, sq, NUM_SQUARES - 1 - sq)  # noqa: E731
    swapped = replace(
        positions,
        squares=rotate(positions.squares.flip(1)),
        eligible=positions.eligible.flip(1),
        carrier=positions.carrier.flip(1),
        to_move=1 - positions.to_move,
        last_knight=rotate(positions.last_knight),
    )
    derive_legal(swapped)
    keep = [i for i in range(NUM_INPUT_PLANES) if i != REPETITION]  # history is not swapped
    assert torch.equal(encode_states(swapped)[:, keep], encode_states(positions)[:, keep])
    assert torch.equal(legal_mask(swapped), legal_mask(positions))


def test_mirrored_planes_and_legal_actions_match_the_mirrored_positions(positions):
    mirrored = mirror_state(positions)
    keep = [i for i in range(NUM_INPUT_PLANES) if i != REPETITION]  # mirroring restarts history
    assert torch.equal(encode_states(mirrored)[:, keep], mirror_planes(encode_states(positions))[:, keep])
    assert torch.equal(legal_mask(mirrored), mirror_policy(legal_mask(positions)))
    assert torch.equal(mirror_planes(mirror_planes(encode_states(positions))), encode_states(positions))


def test_every_square_name_round_trips_through_the_board_shape():
    position = Position.from_pieces(
        pieces=(["a1", "g1", "a8", "d4", "c5"], ["g8", "b2", "f7", "e3", "a5"]), balls=("a1", "g8")
    )
    own = plane(position, "own_pieces").flatten().nonzero().flatten().tolist()
    assert own == sorted(parse_square(s) for s in ("a1", "g1", "a8", "d4", "c5"))
