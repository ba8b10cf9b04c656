"""The batched engine against an independent single-game implementation, and CPU vs CUDA."""

import pytest
import torch

from razzle.game import Position, Rules
from razzle.game.engine import initial_state, random_actions, step
from razzle.game.position import legal_texts
from tests.game.reference import ReferenceGame


def play_against_reference(games: int, rules: Rules, seed: int) -> dict[str, int]:
    """Random games in one batch, checking every legal list and every result."""
    generator = torch.Generator().manual_seed(seed)
    state = initial_state(games, rules)
    references = [ReferenceGame(rules.max_turns, rules.repetition_draw) for _ in range(games)]
    forced_turns = 0
    while not bool(state.done.all()):
        running = (~state.done).nonzero().flatten().tolist()
        texts = legal_texts(state.index(torch.tensor(running)))
        actions = random_actions(state, generator)
        chosen = actions.tolist()
        for game, legal in zip(running, texts):
            reference = references[game]
            assert sorted(legal) == reference.legal(), f"game {game}, turn {reference.turns}"
            forced_turns += reference.forced()
            reference.play(next(text for text, action in legal.items() if action == chosen[game]))
        state = step(state, actions)
        for game in running:
            reference = references[game]
            assert bool(state.done[game]) == reference.over, f"game {game}: end of game differs"
            if reference.over:
                assert int(state.winner[game]) == (-1 if reference.winner is None else reference.winner)
    wins = sum(reference.winner is not None for reference in references)
    return {"wins": wins, "draws": games - wins, "forced_turns": forced_turns}


@pytest.mark.slow
def test_two_thousand_random_games_agree_with_the_reference():
    outcomes = play_against_reference(2000, Rules(), seed=7)
    assert outcomes["wins"] > 0 and outcomes["draws"] > 0
    assert outcomes["forced_turns"] > 0, "random games should meet the forced-pass rule"


def test_short_games_with_repetitions_agree():
    outcomes = play_against_reference(300, Rules(max_turns=30), seed=3)
    assert outcomes["draws"] > 0


def test_single_game_positions_follow_the_batch():
    generator = torch.Generator().manual_seed(11)
    state = initial_state(8)
    positions = [Position.initial() for _ in range(8)]
    while not bool(state.done.all()):
        actions = random_actions(state, generator)
        for game, position in enumerate(positions):
            if not position.is_terminal:
                positions[game] = position.play_index(int(actions[game]))
        state = step(state, actions)
    for game, position in enumerate(positions):
        assert position.is_terminal
        assert position.result == int(state.result[game])
        assert position.turn == int(state.turn[game])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    cpu, cuda = initial_state(512), initial_state(512, device="cuda")
    generator = torch.Generator().manual_seed(5)
    while not bool(cpu.done.all()):
        actions = random_actions(cpu, generator)
        cpu, cuda = step(cpu, actions), step(cuda, actions.cuda())
        for field in ("squares", "eligible", "carrier", "legal", "actions", "done", "winner", "history"):
            assert torch.equal(getattr(cpu, field), getattr(cuda, field).cpu()), field
