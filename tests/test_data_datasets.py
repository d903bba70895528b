"""Datasets on disk: Fashion-MNIST (real files), missing-data errors, ImageNet-style folders."""

import pickle

import numpy as np
import pytest
import torch

from kdzoo.data import build_data, fashion_mnist
from kdzoo.data.image_folder import ImageFiles
from kdzoo.errors import KdzooError

HAVE_FASHION = fashion_mnist.find_files(fashion_mnist.DEBIAN_DIR) is not None


@pytest.fixture
def no_default_data(monkeypatch, tmp_path):
    """No $KDZOO_DATA and no Debian folder: only the root a test passes is searched."""
    monkeypatch.delenv("KDZOO_DATA", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")


@pytest.mark.realdata
@pytest.mark.skipif(not HAVE_FASHION,
                    reason=f"Fashion-MNIST not in {fashion_mnist.DEBIAN_DIR} (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.delenv("KDZOO_DATA", raising=False)
    data = build_data("fashion_mnist", root=tmp_path)  # empty root: falls back to the Debian folder
    assert (data.num_train, data.test.num_samples, data.num_classes, data.in_channels) == (60000, 10000, 10, 1)
    assert data.image_size == (32, 32) and len(data.class_names) == 10
    raw = data.train.images
    assert raw.dtype == torch.uint8 and raw.shape == (60000, 1, 32, 32)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:-2, 2:-2] = False
    assert not raw[:, :, border].any() and raw[:, :, 2:-2, 2:-2].any()  # 28x28 centred in a zero border of 2
    for labels in (data.train.labels, data.test.labels):
        assert labels.min() == 0 and labels.max() == 9 and torch.bincount(labels).min() > 0
    batch = next(data.test.epoch(0))
    zero = (0 - data.mean[0]) / data.std[0]
    assert batch.images.shape == (256, 1, 32, 32) and torch.allclose(batch.images[:, 0, 0, :], torch.tensor(zero))

    small = build_data("fashion_mnist", root=tmp_path, train_subset=300, test_subset=100, batch_size=128)
    assert small.num_train == 300 and small.test.num_samples == 100 and len(small.train) == 3


def test_fashion_mnist_reads_idx_files_in_torchvision_layout(no_default_data, tmp_path):
    import gzip

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)

    def write(name, array, gz):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (gzip.open if gz else open)(raw / (name + (".gz" if gz else "")), "wb").write(header + array.tobytes())

    images = np.arange(5 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(5, 28, 28)
    for prefix, gz in (("train", True), ("t10k", False)):
        write(f"{prefix}-images-idx3-ubyte", images, gz)
        write(f"{prefix}-labels-idx1-ubyte", np.array([0, 1, 2, 3, 9], dtype=np.uint8), gz)
    data = build_data("fashion_mnist", root=tmp_path)
    assert data.num_train == 5 and torch.equal(data.train.images[:, 0, 2:-2, 2:-2], torch.from_numpy(images))
    assert data.test.labels.tolist() == [0, 1, 2, 3, 9]


def test_missing_fashion_mnist_names_the_places_and_fixes(no_default_data, tmp_path):
    with pytest.raises(KdzooError, match="bogus") as err:
        build_data("fashion_mnist", root=tmp_path / "bogus")
    message = str(err.value)
    assert "bogus" in message and "no-debian" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--download" in message and "--data-root" in message


def test_missing_cifar100_without_download_says_how_to_fix(tmp_path):
    with pytest.raises(KdzooError, match="--download") as err:
        build_data("cifar100", root=tmp_path, download=False)
    assert "--download" in str(err.value) and str(tmp_path) in str(err.value)


def make_folder(root, classes=("cat", "dog"), per_class=3):
    from PIL import Image

    gen = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                size = (40 + 4 * i, 30 + 2 * i)
                mode = "L" if i == 0 else "RGB"  # grey images are converted to RGB
                pixels = gen.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).convert(mode).save(root / split / name / f"{i}.png")


def test_imagefolder_one_epoch_without_workers(tmp_path):
    make_folder(tmp_path)
    data = build_data("imagefolder", root=tmp_path, batch_size=4, eval_batch_size=4, num_workers=0, image_size=16)
    assert (data.num_classes, data.in_channels, data.image_size, data.class_names) == (2, 3, (16, 16), ("cat", "dog"))
    assert data.num_train == 6 and len(data.train) == 2
    batches = list(data.train.epoch(0))
    assert [len(b.index) for b in batches] == [4, 2]
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(6))
    for b in batches:
        assert b.images.shape[1:] == (3, 16, 16) and b.images.dtype == torch.float32 and b.labels.dtype == torch.int64
    again = list(data.train.epoch(0))
    # crops seeded by (seed, epoch)
    assert all(torch.equal(a.images, b.images) for a, b in zip(batches, again, strict=True))
    test = list(data.test.epoch(0))
    assert torch.cat([b.labels for b in test]).tolist() == [0, 0, 0, 1, 1, 1]


def test_imagefolder_dataset_pickles_for_spawned_workers(tmp_path):
    make_folder(tmp_path, per_class=1)
    data = build_data("imagefolder", root=tmp_path, num_workers=0, image_size=16)
    files = data.train.loader.dataset
    assert isinstance(files, ImageFiles)
    clone = pickle.loads(pickle.dumps(files))
    assert torch.equal(clone[(1, 3)][0], files[(1, 3)][0])


def test_imagefolder_errors(tmp_path):
    with pytest.raises(KdzooError, match="--data-root"):
        build_data("imagefolder", root=tmp_path / "missing")
    make_folder(tmp_path, per_class=1)
    (tmp_path / "val" / "dog").rename(tmp_path / "val" / "wolf")
    with pytest.raises(KdzooError, match="different class folders"):
        build_data("imagefolder", root=tmp_path)


def test_imagefolder_batches_do_not_depend_on_the_worker_count(tmp_path):
    make_folder(tmp_path)
    build = lambda workers: build_data("imagefolder", root=tmp_path, batch_size=4, num_workers=workers, image_size=16)  # noqa: E731
    inline, workers = build(0), build(2)
    assert workers.train.loader.persistent_workers
    for epoch in (0, 1):
        for a, b in zip(inline.train.epoch(epoch), workers.train.epoch(epoch), strict=True):
            assert torch.equal(a.images, b.images) and torch.equal(a.index, b.index)
    first, second = (torch.cat([b.images for b in inline.train.epoch(e)]) for e in (0, 1))
    assert not torch.equal(first, second)


def test_imagefolder_reads_images_of_mixed_sizes_and_modes(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    modes = ["L", "RGBA", "P", "CMYK", "I;16", "1", "LA"]
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (tmp_path / split / name).mkdir(parents=True)
            for i, mode in enumerate(modes):
                crop = pixels[: 10 + 3 * i, : 12 + 5 * i]
                wide = Image.fromarray(crop[..., 0].astype(np.uint16) * 257)  # 16-bit grey
                image = wide if mode == "I;16" else Image.fromarray(crop).convert(mode)
                image.save(tmp_path / split / name / f"{i}.{'jpg' if mode == 'CMYK' else 'png'}")
    data = build_data("imagefolder", root=tmp_path, batch_size=5, eval_batch_size=5, num_workers=0, image_size=16)
    for loader in (data.train, data.test):
        batches = list(loader.epoch(0))
        assert sum(len(b.index) for b in batches) == 14
        assert all(b.images.shape[1:] == (3, 16, 16) and torch.isfinite(b.images).all() for b in batches)


def broken_folder(root):
    make_folder(root, per_class=2)
    (root / "train" / "dog" / "broken.png").write_bytes(b"not an img")  # 10 bytes, a valid extension
    return root / "train" / "dog" / "broken.png"


def test_an_unreadable_image_stops_the_loader_with_its_name_even_in_a_worker(tmp_path):
    broken = broken_folder(tmp_path)
    data = build_data("imagefolder", root=tmp_path, batch_size=5, num_workers=1, image_size=16)
    with pytest.raises(KdzooError, match=rf"{broken.name}.*UnidentifiedImageError.*unreadable=skip"):
        list(data.train.epoch(0))
    assert len(list(data.test.epoch(0))) == 1  # the worker survived: the loader still serves batches


def test_unreadable_images_can_be_skipped_and_are_counted(tmp_path, capsys):
    broken = broken_folder(tmp_path)
    data = build_data("imagefolder", root=tmp_path, batch_size=5, num_workers=0, image_size=16, unreadable="skip")
    assert data.num_train == 5
    seen = torch.cat([b.index for b in data.train.epoch(0)])
    position = [path for path, _ in data.train.loader.dataset.samples].index(str(broken))
    assert sorted(seen.tolist()) == [i for i in range(5) if i != position]
    err = capsys.readouterr().err
    assert f"left out 1 unreadable image(s) of the train split in this pass (unreadable=skip), e.g. {broken}" in err
