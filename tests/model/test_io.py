import pytest
import torch

from razzle.model.io import ModelFileError, load_model_file, save_model_file
from razzle.model.network import RazzleNet
from razzle.model.planes import NUM_INPUT_PLANES


@pytest.fixture
def network() -> RazzleNet:
    torch.manual_seed(0)
    return RazzleNet(channels=8, blocks=1).eval()


def test_round_trip_keeps_weights_architecture_and_metadata(tmp_path, network):
    path = save_model_file(network, tmp_path / "models" / "net.pt", {"iteration": 3, "run": "a"})
    loaded, metadata = load_model_file(path)
    planes = torch.rand(4, NUM_INPUT_PLANES, 8, 7)
    assert metadata == {"iteration": 3, "run": "a"}
    assert loaded.architecture == network.architecture and not loaded.training
    with torch.no_grad():
        for mine, theirs in zip(network(planes), loaded(planes)):
            assert torch.equal(mine, theirs)
    assert [p.name for p in path.parent.iterdir()] == ["net.pt"]  # no temporary left behind


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file(tmp_path / "nope.pt")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"root:x:0:0:root:/root:/bin/bash\n", "it is not a file written by torch.save"),
        (b"PK\x03\x04" + bytes(100), "the file is damaged or truncated"),
        (b"", "the file is empty"),
    ],
    ids=["text", "broken-zip", "empty"],
)
def test_corrupt_file_says_why_in_plain_words(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as raised:
        load_model_file(path)
    assert str(raised.value).startswith(f"{path} is not a readable model file: {reason}")
    assert "index" not in str(raised.value) and "Stream" not in str(raised.value)  # torch's internals


def test_a_folder_is_not_a_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_model_file(tmp_path)


def test_truncated_file(tmp_path, network):
    path = save_model_file(network, tmp_path / "net.pt")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="not a readable model file: the file is damaged or truncated"):
        load_model_file(path)


def test_foreign_torch_file(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a razzle model file"):
        load_model_file(tmp_path / "other.pt")


def test_other_encoding_version_is_refused(tmp_path, network):
    path = save_model_file(network, tmp_path / "net.pt")
    payload = torch.load(path, weights_only=True)
    payload["encoding_version"] = 0
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="input encoding 0"):
        load_model_file(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path, network):
    path = save_model_file(network, tmp_path / "net.pt")
    payload = torch.load(path, weights_only=True)
    payload["architecture"]["channels"] = 16
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="incompatible network"):
        load_model_file(path)


def test_failed_save_keeps_the_previous_file(tmp_path, network):
    path = save_model_file(network, tmp_path / "net.pt", {"version": 1})
    with pytest.raises(ValueError, match="metadata"):
        save_model_file(network, path, {"callback": object()})
    assert load_model_file(path)[1] == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["net.pt"]
