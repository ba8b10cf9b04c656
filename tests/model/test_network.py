import pytest
import torch

from razzle.game.actions import NUM_ACTIONS
from razzle.model.network import MODEL_SIZES, RazzleNet, parameter_count, parameter_counts
from razzle.model.planes import NUM_INPUT_PLANES, encode_states


@pytest.fixture(scope="module")
def planes(positions):
    return encode_states(positions)[:64]


def test_output_shapes_and_ranges(planes):
    torch.manual_seed(0)
    output = RazzleNet.of_size("tiny")(planes)
    assert output.policy.shape == (len(planes), NUM_ACTIONS)
    assert output.value.shape == output.difficulty.shape == (len(planes),)
    assert output.value.abs().max() <= 1
    assert ((output.difficulty > 0) & (output.difficulty < 1)).all()


def test_policy_and_value_are_the_forwards_without_the_difficulty_head(planes):
    """What a search evaluates with: the same policy and value as the whole forward."""
    torch.manual_seed(0)
    network = RazzleNet.of_size("tiny").eval()
    with torch.no_grad():
        output = network(planes)
        policy, value = network.policy_and_value(planes)
    assert torch.equal(policy, output.policy) and torch.equal(value, output.value)


@pytest.mark.parametrize("size", list(MODEL_SIZES))
def test_value_and_difficulty_start_unsaturated(size, planes):
    torch.manual_seed(0)
    network = RazzleNet.of_size(size)
    last_layers = (network.value_head.out, network.difficulty_head.out)
    for layer in last_layers:
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.2)
        assert (layer.bias == 0).all()
    for mode in (network.train, network.eval):
        mode()
        with torch.no_grad():
            output = network(planes)
        # tanh and sigmoid far from their flat ends: gradients flow from the first step.
        assert output.value.abs().max() < 0.3, size
        assert output.value.std() < 0.15, size
        assert (output.difficulty - 0.5).abs().max() < 0.1, size


def test_named_sizes_have_the_configured_filters_and_blocks():
    counts = parameter_counts()
    assert list(counts) == ["tiny", "small", "medium", "large"]
    assert counts["tiny"] < counts["small"] < counts["medium"] < counts["large"]
    for size, (channels, blocks) in MODEL_SIZES.items():
        network = RazzleNet.of_size(size)
        assert network.architecture == {"channels": channels, "blocks": blocks, "in_planes": NUM_INPUT_PLANES}
        assert len(network.tower) == blocks and network.stem[0][0].out_channels == channels
        assert parameter_count(network) == counts[size]


def test_bad_sizes_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="tiny, small, medium, large"):
        RazzleNet.of_size("huge")
    with pytest.raises(ValueError, match="channels"):
        RazzleNet(channels=0, blocks=2)
