"""--teacher-cache DIR: the teacher's logits per training batch, read back by runs that would compute exactly the same
ones; a run with the cache gives the same result as one without; any change of key is a miss; unusable files are
recomputed, altered ones stop the run; a full disk or a kill while a file is written leaves no file that reads as
whole; feature methods are refused; a file's size is the formula the docs' size table states, plus torch.save's small
overhead."""

import csv
import errno
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import ONE_THREAD, TINY, kdzoo_subprocess, wait_for
from kdzoo.config import build_config
from kdzoo.engine.checkpoint import BEST, LAST
from kdzoo.engine.teacher_cache import (
    FORMAT,
    KEY_OPTIONS,
    TeacherCache,
    cache_bytes_per_epoch,
    cache_key,
    check_cache_allowed,
    human_size,
    key_fields,
    shared_key,
)
from kdzoo.errors import ConfigError
from kdzoo.models import create_model
from kdzoo.resolved import resolve_run

STEPS = 3  # TINY: 96 training images in batches of 32
HANGING_WRITER = Path(__file__).with_name("hanging_cache_write.py")
SPEED_PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "speed.md"
TIME_COLUMNS = {"epoch_time_s", "images_per_s", "train_time_s"}


def rows(run_dir):
    """metrics.csv without its time columns."""
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(f)]


def weights(run_dir):
    return torch.load(run_dir / LAST, weights_only=True)["model"]


def same_result(a, b):
    assert rows(a) == rows(b)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def cache_record(run_dir):
    return json.loads((run_dir / "summary.json").read_text())["teacher_cache"]


@pytest.fixture
def distill(cli, tiny_teacher, tmp_path, one_thread):
    """Run ``kdzoo distill`` from the tiny teacher (deterministic, 2 epochs unless told) into ``tmp_path/NAME``;
    returns (exit code, stdout, stderr, run folder)."""

    def run(name, *args, teacher=tiny_teacher, epochs=2):
        code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", *TINY, "--epochs", epochs,
                             "--deterministic", "--output-dir", tmp_path, "--name", name, *args)
        return code, out, err, tmp_path / name

    return run


@pytest.mark.parametrize("method", ["kd", "dkd", "mlkd", "ctkd"])
def test_a_run_that_fills_and_one_that_reads_the_cache_give_the_uncached_result(distill, tmp_path, method):
    cache = ["--method", method, "--teacher-cache", tmp_path / "cache"]
    code, _, err, plain = distill("plain", "--method", method)
    assert code == 0, err
    code, out, err, filled = distill("filled", *cache)
    assert code == 0, err
    assert "holds 0 of the 2 epochs" in out
    record = cache_record(filled)
    assert (record["hits"], record["misses"], record["teacher_time_saved_s"]) == (0, 2 * STEPS, 0)
    code, out, err, read = distill("read", *cache)
    assert code == 0, err
    assert "holds 2 of the 2 epochs" in out and f"{2 * STEPS} batches read (hits), 0 computed" in out
    again = cache_record(read)
    assert again["key"] == record["key"] and (again["hits"], again["misses"]) == (2 * STEPS, 0)
    assert again["teacher_time_saved_s"] > 0 and again["size_bytes"] > 0
    folder = tmp_path / "cache" / record["key"]
    saved = torch.load(folder / "epoch_1.pt", weights_only=True)
    assert saved["format"] == FORMAT and saved["steps"] == STEPS and saved["dtype"] == "torch.float32"
    assert saved["views"] == (2 if method == "mlkd" else 1)
    assert saved["logits"][0].shape == (32 * saved["views"], 10)
    overhead = (folder / "epoch_1.pt").stat().st_size - cache_bytes_per_epoch(96, 10, torch.float32, saved["views"])
    assert 0 < overhead < 2048 + 512 * STEPS  # torch.save's: under 2 KiB per file and 0.5 KiB per batch
    assert json.loads((folder / "key.json").read_text())["teacher_sha256"]
    same_result(plain, filled)
    same_result(plain, read)


def test_the_summary_names_the_cache_folder_as_the_run_does(tmp_path, monkeypatch):
    """A relative --teacher-cache stays relative in summary.json (a committed run names no folder of its machine)."""
    monkeypatch.chdir(tmp_path)
    cache = TeacherCache("cache", {"teacher_sha256": "0" * 64, "views": 1}, verify="batch", exact=True,
                         device=torch.device("cpu"), log=lambda _: None)
    assert cache.summary()["folder"] == f"cache/{cache.key}"
    assert cache.folder == tmp_path.resolve() / "cache" / cache.key and (cache.folder / "key.json").is_file()


def test_a_different_seed_teacher_or_batch_size_is_a_miss_with_the_uncached_result(distill, tmp_path, tiny_teacher):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for name in ("config.yaml", LAST, BEST):
        (teacher / name).write_bytes((tiny_teacher / name).read_bytes())
    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, first = distill("first", *cache, teacher=teacher, epochs=1)
    assert code == 0, err
    key = cache_record(first)["key"]
    for name in (LAST, BEST):  # another teacher under the same path
        data = torch.load(teacher / name, weights_only=True)
        data["model"]["fc.bias"] = data["model"]["fc.bias"] + 0.5
        torch.save(data, teacher / name)
    changes = {"seed": ["--seed", "1"], "other-teacher": [], "batch": ["--batch-size", "48"]}
    keys = {key}
    for name, args in changes.items():
        code, _, err, run = distill(name, *cache, *args, teacher=teacher, epochs=1)
        assert code == 0, err
        record = cache_record(run)
        assert record["hits"] == 0 and record["misses"] > 0, name
        keys.add(record["key"])
    assert len(keys) == 1 + len(changes)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(keys)
    code, _, err, uncached = distill("other-teacher-uncached", teacher=teacher, epochs=1)
    assert code == 0, err
    same_result(uncached, tmp_path / "other-teacher")


def test_a_truncated_file_is_recomputed_and_an_altered_one_stops_the_run(distill, tmp_path):
    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, filled = distill("filled", *cache)
    assert code == 0, err
    folder = tmp_path / "cache" / cache_record(filled)["key"]
    whole = (folder / "epoch_1.pt").read_bytes()
    logits = torch.load(folder / "epoch_1.pt", weights_only=True)["logits"]
    (folder / "epoch_1.pt").write_bytes(whole[:len(whole) // 2])
    code, out, err, again = distill("again", *cache, "--teacher-cache-verify", "all")
    assert code == 0, err
    assert f"teacher cache {folder / 'epoch_1.pt'} cannot be used" in out
    assert (cache_record(again)["hits"], cache_record(again)["misses"]) == (STEPS, STEPS)
    rewritten = torch.load(folder / "epoch_1.pt", weights_only=True)["logits"]  # written again, the same
    assert all(torch.equal(a, b) for a, b in zip(logits, rewritten, strict=True))
    same_result(filled, again)

    data = torch.load(folder / "epoch_2.pt", weights_only=True)
    data["logits"][1][0, 0] += 1e-3
    torch.save(data, folder / "epoch_2.pt")
    code, _, err, _ = distill("altered", *cache, "--teacher-cache-verify", "all")
    assert code == 2 and "Traceback" not in err
    assert f"The teacher cache {folder} (key {folder.name}) does not match this run" in err
    assert "epoch 2, batch 2" in err and "bit for bit" in err


def disk_full_when(full, partial: bytes = b""):
    """``torch.save`` that writes ``partial`` and then fails with "No space left on device" for the dicts ``full``
    picks, and saves everything else."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and full(obj):
            f.write(partial)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    return save


def test_an_epoch_cached_before_a_crash_is_reused_on_resume(cli, distill, tmp_path, monkeypatch):
    """The run dies writing epoch 2's checkpoint, after epoch 2's teacher outputs were written: --resume reads them."""
    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, straight = distill("straight")
    assert code == 0, err
    monkeypatch.setattr(torch, "save", disk_full_when(lambda obj: obj.get("epoch") == 2 and "optimizer" in obj))
    code, _, err, run = distill("crashed", *cache)
    assert code == 2 and "No space left on device" in err
    monkeypatch.undo()
    code, _, err = cli("distill", "--resume", run)
    assert code == 0, err
    record = cache_record(run)
    assert (record["hits"], record["misses"]) == (STEPS, STEPS)  # epoch 1 computed, epoch 2 read back
    same_result(straight, run)


def test_a_full_disk_while_writing_the_cache_is_warned_about_and_changes_no_result(distill, tmp_path, monkeypatch):
    """The disk fills while epoch 1's file is written (part of it reached the disk): the run warns once, naming the
    file, the folder and the fix, writes nothing more to the cache, records the error and ends as an uncached run;
    no file is left that reads as whole, and a later run computes both epochs again and writes them."""
    cache_writes = []

    def a_cache_file(obj):
        if obj.get("format") == FORMAT:
            cache_writes.append(obj["epoch"])
            return True
        return False

    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, plain = distill("plain")
    assert code == 0, err
    monkeypatch.setattr(torch, "save", disk_full_when(a_cache_file, partial=b"PK\x03\x04" * 1024))
    code, out, err, full = distill("full", *cache)
    monkeypatch.undo()
    assert code == 0, err
    record = cache_record(full)
    folder = tmp_path / "cache" / record["key"]
    assert cache_writes == [1] and out.count("warning: could not write the teacher cache file") == 1
    assert f"{folder / 'epoch_1.pt'} ({os.strerror(errno.ENOSPC)}): this run writes nothing more to the teacher " \
           f"cache {folder}" in out and "Free some space on that disk" in out
    assert record["write_error"] == f"{folder / 'epoch_1.pt'}: {os.strerror(errno.ENOSPC)}"
    assert (record["hits"], record["misses"]) == (0, 2 * STEPS)
    assert [p.name for p in folder.iterdir()] == ["key.json"]  # no epoch file, whole or partial
    same_result(plain, full)
    code, _, err, later = distill("later", *cache)
    assert code == 0, err
    assert (cache_record(later)["misses"], cache_record(later)["write_error"]) == (2 * STEPS, None)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_1.pt", "epoch_2.pt", "key.json"]
    same_result(plain, later)


def test_a_run_killed_with_sigkill_while_writing_the_cache_recomputes_that_epoch_on_resume(cli, distill, tmp_path,
                                                                                          tiny_teacher):
    """SIGKILL halfway through writing epoch 2's file, after epoch 1's checkpoint: no epoch 2 file is left that reads
    as whole; --resume computes epoch 2 again and writes it, and ends as an uncached run."""
    cache = ["--teacher-cache", tmp_path / "cache"]
    code, _, err, straight = distill("straight", epochs=3)
    assert code == 0, err
    run, writing = tmp_path / "killed", tmp_path / "writing"
    victim = kdzoo_subprocess(writing, 2, "distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY,
                              "--epochs", "3", "--deterministic", "--output-dir", tmp_path, "--name", "killed", *cache,
                              env=ONE_THREAD, script=HANGING_WRITER)
    wait_for(writing, victim)
    victim.kill()
    victim.wait()
    (folder,) = (tmp_path / "cache").iterdir()
    assert (folder / "epoch_1.pt").is_file() and not (folder / "epoch_2.pt").exists()
    assert torch.load(run / LAST, weights_only=True)["epoch"] == 1
    code, _, err = cli("distill", "--resume", run)
    assert code == 0, err
    assert (cache_record(run)["hits"], cache_record(run)["misses"]) == (0, 3 * STEPS)
    for epoch in (1, 2, 3):  # every epoch whole
        assert torch.load(folder / f"epoch_{epoch}.pt", weights_only=True)["steps"] == STEPS
    same_result(straight, run)
    code, _, err, reread = distill("reread", *cache, epochs=3)
    assert code == 0, err
    assert (cache_record(reread)["hits"], cache_record(reread)["misses"]) == (3 * STEPS, 0)
    same_result(straight, reread)


@pytest.mark.parametrize("options,message", [
    ({"method": "fitnet"}, "and fitnet reads the teacher's feature maps, not only its logits"),
    ({"method": "ofd"}, "and ofd runs the teacher in batch statistics"),
    ({"teacher": None, "method": "byot"}, "and the run has no teacher"),
])
def test_the_cache_is_refused_where_it_cannot_be_exact(options, message):
    cfg = build_config(overrides={"model": "resnet8", "teacher": "t.pt", "teacher_cache": "c", **options})
    with pytest.raises(ConfigError, match="--teacher-cache") as caught:
        check_cache_allowed(resolve_run(cfg))
    assert message in str(caught.value)


def test_a_feature_method_with_the_cache_is_refused_before_anything_runs(cli, tmp_path):
    code, _, err = cli("distill", "--teacher", tmp_path / "missing.pt", "--student", "resnet8", *TINY,
                       "--method", "fitnet", "--teacher-cache", tmp_path / "cache")
    assert code == 2 and "Traceback" not in err
    assert "--teacher-cache keeps a teacher's logits for logit methods (kd, dkd, mlkd, ...), and fitnet" in err
    assert not (tmp_path / "cache").exists()


def test_the_key_a_grid_compares_without_the_teacher_holds_every_option_of_the_cache_key():
    """``shared_key`` (how a grid tells which runs share a key before any teacher is loaded) covers every run option
    ``key_fields`` reads; the method and the student are not in it, the views and the seed are."""
    read = set()

    class Recording:
        def __init__(self, cfg):
            self.cfg = cfg

        def __getattr__(self, name):
            read.add(name)
            return getattr(self.cfg, name)

    cfg = build_config(overrides={"model": "resnet8", "teacher": "t.pt", "dataset": "synthetic", "method": "kd"})
    key_fields(Recording(cfg), create_model("resnet14", num_classes=10), torch.device("cpu"), None, False, None,
               views=1, num_train=96)
    assert read and read <= set(KEY_OPTIONS)
    key = shared_key(cfg)
    assert shared_key(replace(cfg, method="dkd", model="resnet14", t_student=2.0)) == key
    assert shared_key(replace(cfg, method="mlkd")) != key  # a strong second view
    assert shared_key(replace(cfg, seed=1)) != key and shared_key(replace(cfg, teacher_cache="c")) != key


def test_verification_draws_from_its_own_generator_and_compares_within_the_stated_tolerance(tmp_path):
    from kdzoo.engine.teacher_cache import TOLERANCE, TeacherCache, TeacherCacheError
    from kdzoo.models import Features

    fields = {"views": 1, "seed": 0}
    logits = [torch.randn(4, 10, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    writer = TeacherCache(tmp_path, fields, "batch", exact=True, device=torch.device("cpu"), log=lambda _: None)
    writer.start_epoch(1, 5)
    for x in logits:
        writer.outputs(lambda x=x: Features(x, []))
    writer.finish_epoch()

    state = torch.get_rng_state()
    reader = TeacherCache(tmp_path, fields, "batch", exact=False, device=torch.device("cpu"), log=lambda _: None)
    reader.start_epoch(1, 5)
    assert torch.equal(torch.get_rng_state(), state) and len(reader.check) == 1  # the global RNG untouched
    rtol, atol = TOLERANCE
    for x in logits:  # within the tolerance: read back
        assert torch.equal(reader.outputs(lambda x=x: Features(x + 0.5 * atol, [])).logits, x)
    reader.start_epoch(1, 5)
    checked = next(iter(reader.check))
    with pytest.raises(TeacherCacheError, match=f"epoch 1, batch {checked + 1} .*within rtol"):
        for x in logits:
            reader.outputs(lambda x=x: Features(x + 10 * atol + 2 * rtol * x.abs(), []))


def test_the_documented_cache_sizes_are_the_formula():
    """docs/guide/speed.md's size table, each cell recomputed: per epoch in fp32 and bf16/fp16, and for the run."""
    rows = [line.split("|")[1:-1] for line in SPEED_PAGE.read_text().splitlines()
            if line.startswith(("| CIFAR-100", "| ImageNet"))]
    assert len(rows) == 4
    for row in rows:
        images, classes, views, epochs = (int(cell.replace(" ", "")) for cell in row[1:5])
        sizes = [cache_bytes_per_epoch(images, classes, dtype, views) for dtype in (torch.float32, torch.bfloat16)]
        assert [cell.strip() for cell in row[5:]] == [human_size(n) for n in sizes + [epochs * n for n in sizes]], row


@pytest.mark.parametrize("page", ["README.md", "README.zh-CN.md"])
def test_the_front_pages_give_the_float32_size_per_epoch_of_the_speed_guides_table(page):
    text = (SPEED_PAGE.parents[2] / page).read_text(encoding="utf-8")
    cifar, imagenet = (human_size(cache_bytes_per_epoch(n, c, torch.float32)) for n, c in ((50_000, 100),
                                                                                           (1_281_167, 1000)))
    assert f"{cifar}" in text and f"{imagenet}" in text and "--teacher-cache DIR" in text


def test_a_cpus_thread_count_is_part_of_the_key():
    """Another number of CPU threads may sum a convolution in another order: a miss, not a failed verification."""
    cfg = build_config(None, {"model": "resnet8", "teacher": "t.pt", "method": "kd", "dataset": "synthetic"})
    teacher = create_model("resnet8", num_classes=10)
    threads = torch.get_num_threads()
    keys = set()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            keys.add(cache_key(key_fields(cfg, teacher, torch.device("cpu"), None, False, None, 1, 100)))
    finally:
        torch.set_num_threads(threads)
    assert len(keys) == 2
