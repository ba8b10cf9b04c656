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
    # The evaluator's copy has batch norm folded into its convolutions: equal up to rounding.
    close = dict(rtol=1e-5, atol=1e-6)
    assert torch.allclose(logits[player1], direct.policy[player1], **close)
    # For Player 2, absolute action a is canonical action rotate(a).
    player2_canonical = direct.policy[~player1][:, rotate_actions(torch.arange(NUM_ACTIONS))]
    assert torch.allclose(logits[~player1], player2_canonical, **close)
    assert torch.allclose(value, direct.value, **close)
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


def test_new_weights_reach_the_evaluating_copy_in_place(positions):
    torch.manual_seed(0)
    evaluator = NetworkEvaluator(RazzleNet(channels=16, blocks=1))
    weights = [parameter.data_ptr() for parameter in evaluator._inference.parameters()]
    trained = RazzleNet(channels=16, blocks=1).eval()
    torch.nn.init.normal_(trained.value_head.out.weight)
    trained.tower[0].first[1].running_mean.fill_(0.5)
    evaluator.load_state_dict(trained.state_dict())
    _, value = evaluator(positions)
    with torch.no_grad():
        direct = trained(encode_states(positions))
    assert torch.allclose(value, direct.value, rtol=1e-5, atol=1e-6)
    assert [parameter.data_ptr() for parameter in evaluator._inference.parameters()] == weights
