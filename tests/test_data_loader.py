"""Loaders: each sample once per epoch, order and augmentation from (seed, epoch), sharding, subsets, the
synthetic data. (The dataset registry and build_data's option checks: test_data_registry.py.)"""

import pytest
import torch

from kdzoo.data import Batch, build_data
from kdzoo.data.sampling import EpochOrder
from kdzoo.errors import ConfigError

SMALL = dict(num_train=100, num_test=50, image_size=16)


def epoch_batches(loader, epoch):
    return list(loader.epoch(epoch))


def test_every_sample_once_per_epoch_with_a_short_last_batch():
    data = build_data("synthetic", batch_size=32, eval_batch_size=32, **SMALL)
    for loader in (data.train, data.test):
        batches = epoch_batches(loader, 3)
        full, rest = divmod(loader.num_samples, 32)
        assert rest and len(batches) == len(loader) == full + 1 and len(batches[-1].index) == rest
        index = torch.cat([b.index for b in batches])
        assert sorted(index.tolist()) == list(range(loader.num_samples))
    assert ([b.index.tolist() for b in epoch_batches(data.test, 0)]
            == [b.index.tolist() for b in epoch_batches(data.test, 5)])


def test_batches_hold_normalised_images_labels_and_indices():
    data = build_data("synthetic", batch_size=32, **SMALL)
    batch = next(data.train.epoch(0))
    assert isinstance(batch, Batch)
    assert batch.images.shape == (32, 3, 16, 16) and batch.images.dtype == torch.float32
    assert batch.labels.dtype == torch.int64 and batch.index.dtype == torch.int64
    assert torch.equal(batch.labels, data.train.labels[batch.index])
    test = torch.cat([b.images for b in data.test.epoch(0)])
    assert abs(float(test.mean())) < 0.2 and abs(float(test.std()) - 1) < 0.2  # normalised with the split's statistics


def test_same_seed_and_epoch_give_identical_batches_and_epochs_differ():
    make = lambda seed: build_data("synthetic", batch_size=32, seed=seed, **SMALL)  # noqa: E731
    a, b, other_seed = make(0), make(0), make(1)
    e1, e1_again = epoch_batches(a.train, 1), epoch_batches(b.train, 1)
    for x, y in zip(e1, e1_again, strict=True):
        assert torch.equal(x.images, y.images) and torch.equal(x.index, y.index)
    e2 = epoch_batches(a.train, 2)
    assert not torch.equal(e1[0].index, e2[0].index)
    assert not torch.equal(e1[0].index, epoch_batches(other_seed.train, 1)[0].index)
    # the global RNG neither drives nor is touched by the loader
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = epoch_batches(a.train, 1)
    assert torch.equal(state, torch.get_rng_state()) and torch.equal(again[0].images, e1[0].images)


def test_augmentation_off_gives_the_same_images_each_epoch():
    data = build_data("synthetic", batch_size=100, augment=False, **SMALL)
    x0, x1 = next(data.train.epoch(0)), next(data.train.epoch(1))
    torch.testing.assert_close(x0.images[x0.index.argsort()], x1.images[x1.index.argsort()])


@pytest.mark.parametrize("n,world", [(100, 2), (101, 2), (7, 3), (2, 4)])
def test_ranks_cover_all_samples_with_equal_batch_counts(n, world):
    ranks = [build_data("synthetic", batch_size=8, rank=r, world_size=world, num_train=n, num_test=n, image_size=8)
             for r in range(world)]
    assert len({len(d.train) for d in ranks}) == 1
    train = [torch.cat([b.index for b in d.train.epoch(4)]) for d in ranks]
    assert len({len(t) for t in train}) == 1  # padded like DistributedSampler
    assert set(torch.cat(train).tolist()) == set(range(n))
    test = torch.cat([torch.cat([b.index for b in d.test.epoch(0)]) for d in ranks])
    assert sorted(test.tolist()) == list(range(n))  # evaluation shards count each sample once


def test_epoch_order_pads_like_distributed_sampler():
    orders = [EpochOrder(10, seed=3, shuffle=True, pad=True, rank=r, world_size=4)(0) for r in range(4)]
    full = EpochOrder(10, seed=3, shuffle=True)(0)
    assert [len(o) for o in orders] == [3] * 4
    assert torch.equal(torch.stack(orders, 1).flatten(), torch.cat([full, full[:2]]))


def test_subsets_are_fixed_by_the_data_seed_alone():
    a = build_data("synthetic", train_subset=30, test_subset=20, **SMALL)
    b = build_data("synthetic", seed=1, train_subset=30, test_subset=20, **SMALL)  # another run seed
    assert a.num_train == 30 and a.test.num_samples == 20
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    other = build_data("synthetic", data_seed=1, train_subset=30, test_subset=20, **SMALL)
    assert not torch.equal(other.train.images, a.train.images) and not torch.equal(other.test.images, a.test.images)
    with pytest.raises(ConfigError, match=r"data_seed must be a whole number between 0 and 9223372036854775807 "
                                          r"\(2\*\*63-1 is the largest seed torch takes\), got -1"):
        build_data("synthetic", data_seed=-1, **SMALL)
    with pytest.raises(ConfigError, match="larger than"):
        build_data("synthetic", train_subset=101, **SMALL)


def test_synthetic_is_deterministic_and_has_the_asked_shape():
    a = build_data("synthetic", num_classes=4, num_train=40, num_test=12, image_size=24, channels=1)
    b = build_data("synthetic", num_classes=4, num_train=40, num_test=12, image_size=24, channels=1, seed=5)
    assert (a.num_classes, a.in_channels, a.image_size, a.num_train, a.test.num_samples) == (4, 1, (24, 24), 40, 12)
    assert a.train.images.dtype == torch.uint8 and a.train.images.shape == (40, 1, 24, 24)
    assert set(a.train.labels.tolist()) == set(range(4)) and len(a.class_names) == 4
    assert torch.equal(a.train.images, b.train.images)  # the run seed does not change the data
    c = build_data("synthetic", num_classes=4, num_train=40, num_test=12, image_size=24, channels=1, generator_seed=1)
    assert not torch.equal(a.train.images, c.train.images)
