"""The teacher cache and atomic files against a hostile user (issue 32): a training image rewritten in place (same
name, size and modification time) is a miss; the verification's message names what can differ; a read-only cache
folder warns and the run goes on; a symbolic link in the cache is never read and never counted; files are written
with the umask's mode; a killed writer's temporary file is removed once its writer is gone, a live one's is kept."""

import ctypes
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test_teacher_cache
from conftest import ONE_THREAD, TINY, kdzoo_subprocess, wait_for
from kdzoo.data import build_data, fashion_mnist
from kdzoo.engine.checkpoint import BEST, LAST
from kdzoo.engine.teacher_cache import TeacherCache, TeacherCacheError
from kdzoo.models import Features
from test_teacher_cache import HANGING_WRITER, STEPS, cache_record, rows, same_result

# test_teacher_cache's fixture, used here too
distill = test_teacher_cache.distill

FOLDER = ["--dataset", "imagefolder", "--dataset-opt", "image_size=16", "--num-workers", "0", "--batch-size", "8",
          "--no-progress", "--no-tensorboard", "--device", "cpu", "--deterministic"]


def png(path: Path, seed: int) -> None:
    """A 16x16 RGB PNG of random pixels, stored uncompressed: every one has the same size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=0)


def image_folder(root: Path, per_class: int = 8) -> Path:
    for split in ("train", "val"):
        for c, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                png(root / split / name / f"{i}.png", seed=100 * c + i + (50 if split == "val" else 0))
    return root


def rewrite_in_place(path: Path, seed: int) -> None:
    """Other pixels in ``path``: the same name and size, the modification time set back to the old one. Written
    again until the change time differs (the kernel's file clock ticks coarsely: a rewrite within one tick keeps it,
    which the fingerprint cannot see)."""
    before = path.stat()
    while True:
        png(path, seed)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = path.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        if after.st_ctime_ns != before.st_ctime_ns:
            return
        time.sleep(0.005)


@pytest.fixture
def folder_run(cli, tmp_path, one_thread):
    """``kdzoo distill`` on a 2-class image folder from a resnet8 teacher trained on it for one epoch."""
    data = image_folder(tmp_path / "data")
    code, _, err = cli("train", "--model", "resnet8", *FOLDER, "--data-root", data, "--epochs", 1,
                       "--output-dir", tmp_path, "--name", "teacher")
    assert code == 0, err

    def run(name, *args):
        code, out, err = cli("distill", "--teacher", tmp_path / "teacher", "--student", "resnet8", *FOLDER,
                             "--data-root", data, "--epochs", 2, "--output-dir", tmp_path, "--name", name, *args)
        assert code == 0, err
        return out, tmp_path / name

    return data, run


def test_an_image_rewritten_with_its_name_size_and_time_is_a_miss_with_the_uncached_result(folder_run, tmp_path):
    data, run = folder_run
    cache = ["--teacher-cache", tmp_path / "cache", "--teacher-cache-verify", "none"]
    _, filled = run("filled", *cache)
    rewrite_in_place(data / "train" / "cat" / "3.png", seed=999)
    _, plain = run("plain")
    out, again = run("again", *cache)
    assert "holds 0 of the 2 epochs" in out
    record = cache_record(again)
    assert record["key"] != cache_record(filled)["key"] and record["hits"] == 0
    same_result(plain, again)
    assert rows(plain) != rows(filled)  # the image mattered


def test_a_dataset_read_from_files_declares_them_and_their_fingerprint_follows_them(tmp_path, monkeypatch):
    """ImageFolder declares its training images (the subset's), Fashion-MNIST its IDX files: each file rewritten in
    place changes the fingerprint the key holds; data made in memory has none."""
    image_folder(tmp_path / "folder", per_class=3)
    data = build_data("imagefolder", root=tmp_path / "folder", num_workers=0, image_size=16, train_subset=4)
    assert len(data.train_files) == 4 and all(Path(p).is_relative_to(tmp_path / "folder" / "train")
                                              for p in data.train_files)
    before = data.fingerprint()
    rewrite_in_place(Path(data.train_files[0]), seed=999)
    assert data.fingerprint() != before

    monkeypatch.delenv("KDZOO_DATA", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    raw = tmp_path / "fm"
    raw.mkdir()
    for name, shape in (("train-images-idx3-ubyte", (5, 28, 28)), ("train-labels-idx1-ubyte", (5,)),
                        ("t10k-images-idx3-ubyte", (5, 28, 28)), ("t10k-labels-idx1-ubyte", (5,))):
        array = np.zeros(shape, dtype=np.uint8)
        (raw / name).write_bytes(bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in shape)
                                 + array.tobytes())
    data = build_data("fashion_mnist", root=raw)
    assert [Path(p).name for p in data.train_files] == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    before = data.fingerprint()
    images = raw / "train-images-idx3-ubyte"
    stat = images.stat()
    images.write_bytes(images.read_bytes()[:-1] + b"\x01")
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data.fingerprint() != before
    assert build_data("synthetic").fingerprint() is None


def test_a_failed_verification_names_the_inputs_the_numerics_and_the_file(tmp_path):
    logits = [torch.randn(4, 10, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    writer = TeacherCache(tmp_path, {"views": 1}, "all", exact=True, device=torch.device("cpu"), log=lambda _: None)
    writer.start_epoch(1, 2)
    for x in logits:
        writer.outputs(lambda x=x: Features(x, []))
    writer.finish_epoch()
    reader = TeacherCache(tmp_path, {"views": 1}, "all", exact=True, device=torch.device("cpu"), log=lambda _: None)
    reader.start_epoch(1, 2)
    with pytest.raises(TeacherCacheError) as err:
        reader.outputs(lambda: Features(logits[0] + 1, []))
    message = str(err.value)
    assert "\n" not in message
    assert "the teacher's inputs (a data file changed" in message and "the numerics (another GPU model" in message
    assert "or the file itself (altered or replaced)" in message and f"Delete {reader.folder}" in message


def without_dac_override() -> None:
    """In a child process run by root: give up the capabilities that let root write where permissions say no."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="a read-only folder for root needs Linux capabilities")
def test_a_read_only_cache_folder_warns_once_and_the_run_goes_on_uncached(tmp_path, tiny_teacher):
    """chmod 0555, made binding for root too: the run's child process gives up CAP_DAC_OVERRIDE (a real permission
    error, not a mock)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    args = ["distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "1", "--output-dir",
            tmp_path, "--name", "ro", "--teacher-cache", cache]
    run = kdzoo_subprocess(*args, env=ONE_THREAD, preexec_fn=without_dac_override if os.geteuid() == 0 else None)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out
    assert out.count("warning: could not write the teacher cache file") == 1 and "Permission denied" in out
    assert "Make that folder writable" in out and "Traceback" not in out
    record = cache_record(tmp_path / "ro")
    assert (record["hits"], record["misses"]) == (0, STEPS) and "Permission denied" in record["write_error"]
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("target", ["another epoch's file", "a whole copy of its own"])
def test_a_symlinked_epoch_file_is_neither_counted_nor_read(distill, tmp_path, target):
    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, filled = distill("filled", *cache)
    assert code == 0, err
    folder = tmp_path / "cache" / cache_record(filled)["key"]
    link = folder / "epoch_2.pt"
    if target == "another epoch's file":
        link.unlink()
        link.symlink_to(folder / "epoch_1.pt")
    else:
        link.rename(tmp_path / "elsewhere.pt")
        link.symlink_to(tmp_path / "elsewhere.pt")
    code, out, err, again = distill("again", *cache)
    assert code == 0, err
    assert "holds 1 of the 2 epochs (hits; 1 to compute and write: misses)" in out
    assert f"teacher cache {link} cannot be used (it is a symbolic link" in out
    assert (cache_record(again)["hits"], cache_record(again)["misses"]) == (STEPS, STEPS)
    assert not link.is_symlink() and torch.load(link, weights_only=True)["epoch"] == 2  # written again, in place
    same_result(filled, again)


def test_cache_and_run_files_are_written_with_the_umask_s_mode(distill, tmp_path):
    before = os.umask(0o002)
    try:
        code, _, err, run = distill("shared", "--teacher-cache", tmp_path / "cache", epochs=1)
    finally:
        os.umask(before)
    assert code == 0, err
    folder = tmp_path / "cache" / cache_record(run)["key"]
    files = [folder / "epoch_1.pt", folder / "key.json", run / LAST, run / BEST, run / "config.yaml",
             run / "summary.json"]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o664" for f in files}


@pytest.mark.slow
def test_a_killed_writers_temporary_file_is_removed_once_it_is_gone_and_a_live_ones_kept(tmp_path, tiny_teacher):
    """A real writer hangs halfway through epoch 2's file (tests/hanging_cache_write.py): a cache opened meanwhile
    keeps its temporary file (its writer holds the lock); after SIGKILL the next one removes it and says so."""
    cache, writing = tmp_path / "cache", tmp_path / "writing"
    victim = kdzoo_subprocess(writing, 2, "distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY,
                              "--epochs", "2", "--output-dir", tmp_path, "--name", "killed", "--teacher-cache", cache,
                              env=ONE_THREAD, script=HANGING_WRITER)
    try:
        wait_for(writing, victim)
        (folder,) = cache.iterdir()
        (tmp,) = folder.glob("epoch_2.pt*.tmp")
        fields = json.loads((folder / "key.json").read_text())
        notes = []
        TeacherCache(cache, fields, "batch", exact=True, device=torch.device("cpu"), log=notes.append)
        assert tmp.exists() and notes == []  # a live writer's
    finally:
        victim.kill()
        victim.wait()
    TeacherCache(cache, fields, "batch", exact=True, device=torch.device("cpu"), log=notes.append)
    assert not tmp.exists()
    assert notes == [f"note: removed 1 temporary file(s) of killed writers from {folder.resolve()}, e.g. {tmp.name}."]
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_1.pt", "key.json"]
