import pytest
import torch

from razzle.model.planes import mirror_planes
from razzle.model.policy import mirror_policy
from razzle.model.samples import SampleFileError, Samples
from razzle.train.data import SampleDataModule


def numbered(samples: Samples, start: int) -> Samples:
    """Copies whose `turn` field is a unique id, to follow samples through the loaders."""
    copy = samples[torch.arange(len(samples))]
    copy.turn = torch.arange(start, start + len(samples))
    return copy


def all_equal(tensors, others) -> bool:
    return all(torch.equal(a, b) for a, b in zip(tensors, others))


def ids(loader) -> list[int]:
    return sorted(t for batch in loader for t in batch.turn.tolist())


@pytest.fixture
def shard_dir(tmp_path, real_samples):
    numbered(real_samples, 0).save(tmp_path / "000.pt")
    numbered(real_samples, 100).save(tmp_path / "001.pt")
    return tmp_path


def test_split_is_disjoint_complete_and_stable(shard_dir):
    data = SampleDataModule(str(shard_dir), batch_size=256, val_fraction=0.25, mirror=False)
    train = ids(data.train_dataloader())
    val = ids(SampleDataModule(str(shard_dir), batch_size=16, val_fraction=0.25).val_dataloader())
    assert not set(train) & set(val) and len(val) > 0
    assert sorted(train + val) == list(range(64)) + list(range(100, 164))
    assert ids(data.val_dataloader()) == val


def test_max_samples_keeps_the_newest(shard_dir):
    data = SampleDataModule(str(shard_dir), batch_size=256, val_fraction=0.0, max_samples=80)
    assert ids(data.train_dataloader()) == list(range(48, 64)) + list(range(100, 164))


def test_new_shards_are_read_when_the_window_is_loaded_again(shard_dir, real_samples):
    data = SampleDataModule(str(shard_dir), batch_size=64, val_fraction=0.0)
    assert len(ids(data.train_dataloader())) == 128
    numbered(real_samples, 200).save(shard_dir / "002.pt")
    assert len(ids(data.train_dataloader())) == 128  # read once, not behind the loop's back
    data.load_window()
    assert len(ids(data.train_dataloader())) == 192


def test_mirror_augmentation_keeps_planes_and_policy_consistent(shard_dir):
    torch.manual_seed(0)
    data = SampleDataModule(str(shard_dir), batch_size=128, val_fraction=0.0, mirror=True)
    batch = next(iter(data.train_dataloader()))
    original = Samples.load(shard_dir / "000.pt")
    mirrored_count = 0
    for planes, legal, policy, turn in zip(batch.planes, batch.legal, batch.policy, batch.turn):
        source = original[int(turn) % 100]
        seen = (planes, legal, policy)
        as_stored = all_equal(seen, (source.planes, source.legal, source.policy))
        mirror = (mirror_planes(source.planes), mirror_policy(source.legal), mirror_policy(source.policy))
        mirrored = all_equal(seen, mirror)
        assert as_stored or mirrored
        mirrored_count += mirrored and not as_stored
    assert 30 < mirrored_count < 98  # about half of 128


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(SampleFileError, match="does not exist"):
        SampleDataModule(str(tmp_path / "nowhere")).train_dataloader()
    with pytest.raises(SampleFileError, match="no sample shards"):
        SampleDataModule(str(tmp_path)).train_dataloader()


def test_train_draws_draw_that_many_samples_spread_evenly_over_the_window(shard_dir):
    data = SampleDataModule(str(shard_dir), batch_size=16, val_fraction=0.0, mirror=False)
    data.load_window()
    assert data.newest_train_samples == 64  # the newest shard's training samples
    data.train_draws = 320  # 2.5 passes over the 128 samples
    loader = data.train_dataloader()
    drawn = [t for batch in loader for t in batch.turn.tolist()]
    assert len(loader) == 20 and len(drawn) == 320
    times = torch.bincount(torch.tensor(drawn))[torch.tensor(list(range(64)) + list(range(100, 164)))]
    assert set(times.tolist()) == {2, 3} and int(times.sum()) == 320
    assert [t for batch in data.train_dataloader() for t in batch.turn.tolist()] == drawn  # seeded


def test_a_new_shard_changes_the_draw(shard_dir, real_samples):
    data = SampleDataModule(str(shard_dir), batch_size=16, val_fraction=0.0, mirror=False)
    data.load_window()
    data.train_draws = 64
    first = [t for batch in data.train_dataloader() for t in batch.turn.tolist()]
    numbered(real_samples, 200).save(shard_dir / "002.pt")
    data.load_window()
    assert [t for batch in data.train_dataloader() for t in batch.turn.tolist()] != first


def test_a_target_that_reads_search_values_refuses_shards_without_them(shard_dir):
    payload = torch.load(shard_dir / "000.pt", weights_only=True)
    del payload["samples"]["search_value"]
    torch.save(payload, shard_dir / "000.pt")
    assert len(ids(SampleDataModule(str(shard_dir), batch_size=64, val_fraction=0.0).train_dataloader())) == 128
    with pytest.raises(SampleFileError, match="000.pt has no search values"):
        SampleDataModule(str(shard_dir), require_search_value=True).load_window()


def test_ddp_processes_share_one_draw_between_them(shard_dir):
    """Under DDP Lightning wraps a custom sampler (its private `_get_distributed_sampler`, as
    the Trainer calls it): the processes' shares make up the draw, each index once."""
    from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler

    data = SampleDataModule(str(shard_dir), batch_size=16, val_fraction=0.0)
    data.load_window()
    data.train_draws = 320
    whole = list(data.train_dataloader().sampler)
    shares = [
        list(_get_distributed_sampler(data.train_dataloader(), False, 0, num_replicas=2, rank=rank))
        for rank in (0, 1)
    ]
    assert len(shares[0]) == len(shares[1]) == 160
    assert sorted(shares[0] + shares[1]) == sorted(whole)
