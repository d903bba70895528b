"""The dataset registry, over ``list_datasets()``: every registered dataset declares what it is (classes, image size,
channels, source, options), builds offline into loaders that keep that declaration, refuses an unknown option by
name, and says where its files go when they are missing; plus build_data's checks of its common options.

Tests never download: a dataset that reads files builds here from a small fake in its on-disk layout (``FAKES``),
and a dataset registered without one fails ``test_every_dataset_builds_offline_...`` until it has one."""

import os
import pickle
import re

import numpy as np
import pytest
import torch

from kdzoo.data import build_data, dataset_info, fashion_mnist, list_datasets
from kdzoo.errors import ConfigError, KdzooError, UnknownNameError


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Only the root a test passes is searched (no $KDZOO_DATA, no Debian folder), torchvision's checksums accept
    the fakes, and any download fails the test."""
    import torchvision.datasets.cifar
    import torchvision.datasets.mnist

    monkeypatch.delenv("KDZOO_DATA", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download a dataset")

    for module in (torchvision.datasets.cifar, torchvision.datasets.mnist):
        monkeypatch.setattr(module, "download_and_extract_archive", no_download)


# ------------------------------------------------------------------------------------------ fakes

def fake_cifar(name, root):
    """torchvision's CIFAR layout: pickled batches of N x 3072 uint8 rows and their labels, and the class names."""
    folder, train_files, test_file, meta_file, label_key, names_key, classes = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                    "labels", "label_names", 10),
        "cifar100": ("cifar-100-python", ["train"], "test", "meta", "fine_labels", "fine_label_names", 100),
    }[name]
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for file, n in [(f, 20 // len(train_files)) for f in train_files] + [(test_file, 10)]:
        batch = {"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                 label_key: [i % classes for i in range(n)]}
        (root / folder / file).write_bytes(pickle.dumps(batch))
    (root / folder / meta_file).write_bytes(pickle.dumps({names_key: [f"class{i}" for i in range(classes)]}))
    return {}


def fake_fashion_mnist(root):
    """The four IDX files (28 x 28 grey images, labels 0-9) as the Debian package and torchvision hold them."""
    def write(name, array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        (root / name).write_bytes(header + array.tobytes())

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write(f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write(f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return {}


def fake_image_folder(root):
    """ROOT/train/<class>/*.png and ROOT/val/<class>/*.png, two classes of two images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return {}


#: name -> ``fake(root)``: writes the dataset's files (if it reads any) under ``root`` and returns build options.
FAKES = {
    "cifar10": lambda root: fake_cifar("cifar10", root),
    "cifar100": lambda root: fake_cifar("cifar100", root),
    "fashion_mnist": fake_fashion_mnist,
    "imagefolder": fake_image_folder,
    "synthetic": lambda root: {"num_train": 20, "num_test": 10},
}


# --------------------------------------------------------------------------------- every dataset

@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_declares_what_it_is(name):
    info = dataset_info(name)
    assert isinstance(info["description"], str) and info["description"]
    assert isinstance(info["source"], str) and info["source"]
    assert isinstance(info["in_channels"], int) and info["in_channels"] >= 1
    assert len(info["image_size"]) == 2 and all(isinstance(s, int) and s >= 1 for s in info["image_size"])
    classes = info["classes"]
    assert (isinstance(classes, int) and classes >= 2) or (isinstance(classes, str) and classes)  # or where from
    assert isinstance(info["options"], dict)


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_builds_offline_into_loaders_that_keep_its_declaration(name, tmp_path):
    assert name in FAKES, f"no offline fake for dataset {name!r}: add one to FAKES in tests/test_data_registry.py"
    options = FAKES[name](tmp_path)
    data = build_data(name, root=tmp_path, batch_size=8, eval_batch_size=8, num_workers=0, **options)
    info = dataset_info(name)
    assert data.name == name
    assert data.in_channels == info["in_channels"] and data.image_size == tuple(info["image_size"])
    assert data.num_classes == len(data.class_names) >= 2
    if isinstance(info["classes"], int):
        assert data.num_classes == info["classes"]
    assert len(data.mean) == len(data.std) == data.in_channels
    assert len(data.train_labels) == data.num_train
    for loader in (data.train, data.test):
        batches = list(loader.epoch(0))
        assert sorted(torch.cat([b.index for b in batches]).tolist()) == list(range(loader.num_samples))
        for b in batches:
            assert b.images.dtype == torch.float32 and tuple(b.images.shape[1:]) == (data.in_channels, *data.image_size)
            assert torch.isfinite(b.images).all()
            assert b.labels.dtype == torch.int64 and b.index.dtype == torch.int64
            assert ((b.labels >= 0) & (b.labels < data.num_classes)).all()
            assert torch.equal(b.labels, loader.labels[b.index])


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_refuses_an_unknown_option_by_name(name, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"Dataset {name!r} has no option 'no_such_option'")):
        build_data(name, root=tmp_path, no_such_option=1)


@pytest.mark.parametrize("name", [n for n in list_datasets() if dataset_info(n)["source"] != "generated"])
def test_every_dataset_that_reads_files_says_where_they_go_when_missing(name, tmp_path):
    with pytest.raises(KdzooError, match="--data-root"):
        build_data(name, root=tmp_path / "empty", num_workers=0)


# -------------------------------------------------------------------------------- build_data's checks

def test_registry_and_bad_input():
    info = dataset_info("fashion_mnist")
    assert info["classes"] == 10 and info["in_channels"] == 1 and info["image_size"] == (32, 32) and info["source"]
    assert dataset_info("synthetic")["options"]["num_classes"] == 10
    with pytest.raises(UnknownNameError, match="cifar100"):
        build_data("cifar1000")
    with pytest.raises(ConfigError, match="num_train"):
        build_data("synthetic", num_trian=5)
    with pytest.raises(ConfigError, match="rank"):
        build_data("synthetic", rank=2, world_size=2)
    with pytest.raises(ConfigError, match="num_classes"):
        build_data("synthetic", num_classes=0)
