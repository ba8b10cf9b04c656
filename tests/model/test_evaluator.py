import torch

from razzle.game.actions import NUM_ACTIONS, rotate_actions
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.network import RazzleNet
from razzle.model.planes import encode_states


def test_logits_come_back_in_absolute_ids_and_values_match_the_network(positions):
    torch.manual_seed(0)
    network = RazzleNet(channels=16, blocks=1).eval()
    logits, value = NetworkEvaluator(network)(positions)
    with torch.no_grad():
        direct = network(encode_states(positions))
    assert logits.shape == (positions.batch_size, NUM_ACTIONS) and value.shape == (positions.batch_size,)
    player1 = positions.to_move == 0
    assert torch.allclose(logits[player1], direct.policy[player1])
    # For Player 2, absolute action a is canonical action rotate(a).
    player2_canonical = direct.policy[~player1][:, rotate_actions(torch.arange(NUM_ACTIONS))]
    assert torch.allclose(logits[~player1], player2_canonical)
    assert torch.allclose(value, direct.value)
    assert not logits.requires_grad and not value.requires_grad


def test_evaluator_puts_the_network_in_eval_mode_and_runs_bf16(positions):
    torch.manual_seed(0)
    network = RazzleNet(channels=16, blocks=1).train()
    full = NetworkEvaluator(network)
    assert not network.training
    fast = NetworkEvaluator(network, bf16=True)
    (logits, value), (fast_logits, fast_value) = full(positions), fast(positions)
    assert fast_logits.dtype == torch.float32
    assert torch.allclose(value, fast_value, atol=0.02)
    assert torch.allclose(logits, fast_logits, atol=0.1)
