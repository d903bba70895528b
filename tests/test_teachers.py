"""Published teachers by name (``pretrained:NAME``): download (resume, 404, timeout, offline), safe unpacking (crafted,
wrong and truncated archives), integrity records, two processes at once, and the name used by distill, eval and
bench. Nothing reaches the internet: a loopback HTTP server started here serves an archive built here."""

import contextlib
import hashlib
import io
import json
import pickle
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY
from kdzoo import teachers
from kdzoo.config import packaged_configs, read_yaml
from kdzoo.engine.checkpoint import check_teacher_file
from kdzoo.errors import TeacherError
from kdzoo.grid.grid_file import load_grid
from kdzoo.grid.plan import plan
from kdzoo.models import create_model
from kdzoo.run_folder import load_run_config
from kdzoo.teachers.download import download

MEMBER = "cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth"
TINY_100 = [*TINY, "--dataset-opt", "num_classes=100"]


def checkpoint_bytes(arch: str) -> bytes:
    """A teacher file as RepDistiller's train_teacher.py writes it, of a real (untrained) zoo model."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save({"epoch": 240, "model": create_model(arch, num_classes=100).state_dict(),
                "accuracy": torch.tensor(72.34), "optimizer": {}}, buffer)
    return buffer.getvalue()


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.fixture(scope="session")
def teacher_file() -> bytes:
    return checkpoint_bytes("resnet56")


@pytest.fixture(scope="session")
def archive(teacher_file) -> bytes:
    """``cifar_teachers.tar`` with the real layout, holding only resnet56 (the smallest published teacher)."""
    return tar_bytes((entry("cifar_teachers", tarfile.DIRTYPE), None),
                     (entry("cifar_teachers/resnet56_vanilla", tarfile.DIRTYPE), None), (entry(MEMBER), teacher_file))


class Handler(BaseHTTPRequestHandler):
    """Serves ``state.files`` (with ``Range``), or misbehaves as ``state.mode`` says: ``drop`` (half the file, then
    the connection closes; once), ``hang`` (never answers), ``endless`` (zeros without a Content-Length, until the
    client stops reading or ``state.endless`` bytes are sent), ``announce`` (a Content-Length of ``state.announce``
    bytes, then no body)."""

    def do_GET(self):
        state = self.server.state
        state.requests.append((self.path, self.headers.get("Range")))
        if state.mode == "hang":
            state.release.wait(10)
            return
        if state.mode in ("endless", "announce"):
            self.send_response(200)
            if state.mode == "announce":
                self.send_header("Content-Length", str(state.announce))
            self.end_headers()
            if state.mode == "announce":
                state.release.wait(10)
                return
            with contextlib.suppress(ConnectionError):
                for _ in range(state.endless // (64 << 10)):
                    self.wfile.write(bytes(64 << 10))
            return
        time.sleep(state.delay)
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        ranged = self.headers.get("Range")
        start = int(ranged.split("=")[1].split("-")[0]) if ranged else 0
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(len(body) - start))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if state.mode == "drop":
            state.mode = "ok"
            self.wfile.write(body[start:len(body) // 2])
            return  # HTTP/1.0: the connection closes here
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch, tmp_path, archive):
    """A loopback HTTP server serving ``/cifar_teachers.tar``; the cache in ``tmp_path/home``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = state = type("State", (), {})()
    state.files, state.mode, state.delay, state.requests = {"/cifar_teachers.tar": archive}, "ok", 0.0, []
    state.endless, state.announce = 0, 0
    state.release = threading.Event()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("KDZOO_TEACHERS_URL", state.url)
    monkeypatch.setenv("KDZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KDZOO_DOWNLOAD_TIMEOUT", "5")
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def fetch(names=("resnet56",), **kwargs):
    return teachers.fetch(list(names), check=check_teacher_file, say=lambda _: None, **kwargs)


def nothing_cached():
    """No teacher file, no record, no partial download in the downloads folder."""
    root = teachers.downloads_dir()
    leftovers = [p for p in root.rglob("*") if p.is_file() and p.name != "fetch.lock"] if root.exists() else []
    return leftovers == []


def test_fetch_unpacks_checks_and_records_the_teacher_once(server, archive, teacher_file):
    (cached,) = fetch()
    assert cached.path.read_bytes() == teacher_file and cached.path == teachers.downloads_dir() / MEMBER
    assert cached.sha256 == hashlib.sha256(teacher_file).hexdigest()
    assert cached.source == f"{server.url}/{teachers.ARCHIVE}"
    manifest = teachers.read_manifest()
    assert manifest["archive"]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert manifest["archive"]["size"] == len(archive) and manifest["teachers"]["resnet56"]["size"] == len(teacher_file)
    assert not (teachers.downloads_dir() / "downloads" / teachers.ARCHIVE).exists()  # unpacked, not kept
    assert teachers.resolve("resnet56").sha256 == cached.sha256 and len(server.requests) == 1  # cached: no download


def test_a_dropped_connection_resumes_with_range_byte_identical(server, archive, teacher_file):
    server.mode = "drop"
    (cached,) = fetch()
    assert server.requests == [("/cifar_teachers.tar", None), ("/cifar_teachers.tar", f"bytes={len(archive) // 2}-")]
    assert teachers.read_manifest()["archive"]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert cached.path.read_bytes() == teacher_file


def test_a_partial_download_left_by_an_interruption_is_resumed(server, archive, tmp_path):
    target = tmp_path / "cifar_teachers.tar"
    target.with_name(target.name + ".part").write_bytes(archive[:1000])
    assert download(f"{server.url}/cifar_teachers.tar", target, "test", teachers.catalog.KNOWN_ARCHIVE
                    ).read_bytes() == archive
    assert server.requests == [("/cifar_teachers.tar", "bytes=1000-")]


def test_an_archive_whose_unpacking_was_interrupted_is_unpacked_without_downloading(server, archive, teacher_file):
    downloads = teachers.downloads_dir() / "downloads"
    downloads.mkdir(parents=True)
    (downloads / teachers.ARCHIVE).write_bytes(archive)
    assert fetch()[0].path.read_bytes() == teacher_file and server.requests == []


def test_404_names_the_url_and_both_ways_out(server):
    server.files = {}
    with pytest.raises(TeacherError, match="answered 404") as error:
        fetch()
    message = str(error.value)
    assert f"{server.url}/cifar_teachers.tar answered 404" in message
    assert "KDZOO_TEACHERS_URL" in message and "kdzoo teachers add cifar_teachers.tar" in message
    assert nothing_cached()


def test_a_server_that_never_answers_times_out(server, monkeypatch):
    server.mode = "hang"
    monkeypatch.setenv("KDZOO_DOWNLOAD_TIMEOUT", "0.5")
    start = time.monotonic()
    with pytest.raises(TeacherError, match=r"no answer for 0.5 s.*raise KDZOO_DOWNLOAD_TIMEOUT"):
        fetch()
    assert time.monotonic() - start < 5 and nothing_cached()


def test_offline_one_clear_error_and_nothing_half_written(server, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KDZOO_TEACHERS_URL", f"http://127.0.0.1:{port}/mirror/")
    with pytest.raises(TeacherError, match="Could not download") as error:
        fetch()
    message = str(error.value)
    assert f"Could not download http://127.0.0.1:{port}/mirror/cifar_teachers.tar" in message
    assert "refused" in message and "by hand" in message and "mainland China" in message
    assert nothing_cached()


@pytest.mark.parametrize("served,message", [
    (b"<html>Sign in to the Wi-Fi</html>", "not a complete tar archive"),
    ("other files", "holds none of the published teachers"),
    ("truncated", "not a complete tar archive"),
])
def test_wrong_and_truncated_archives_are_refused(server, archive, served, message):
    if served == "other files":
        served = tar_bytes((entry("cifar_teachers/README"), b"hello"))
    elif served == "truncated":
        served = archive[:len(archive) // 2]
    server.files["/cifar_teachers.tar"] = served
    with pytest.raises(TeacherError, match=message):
        fetch()
    assert nothing_cached()


@pytest.mark.parametrize("member,why", [
    (entry("cifar_teachers/../../escaped.pth"), "leads out of its folder"),
    (entry("/tmp/kdzoo_absolute_escape.pth"), "an absolute path"),
    (entry("cifar_teachers/vgg13_vanilla/ckpt_epoch_240.pth", tarfile.SYMTYPE, "/etc/passwd"), "a link"),
    (entry("cifar_teachers/hard", tarfile.LNKTYPE, MEMBER), "a link"),
    (entry("cifar_teachers/tty", tarfile.CHRTYPE), "a device"),
])
def test_crafted_archives_are_refused_whole(server, tmp_path, teacher_file, member, why):
    crafted = tmp_path / "downloads" / "cifar_teachers.tar"
    crafted.parent.mkdir()
    crafted.write_bytes(tar_bytes((entry(MEMBER), teacher_file), (member, b"x" if member.isreg() else None)))
    with pytest.raises(TeacherError, match=f"{why}.*refuses the whole archive"):
        teachers.add(crafted, say=lambda _: None)
    assert nothing_cached() and not (tmp_path / "escaped.pth").exists()
    assert not (tmp_path.parent / "escaped.pth").exists()


def test_an_altered_cached_file_is_refused_until_fetched_again(server, teacher_file):
    (cached,) = fetch()
    cached.path.write_bytes(teacher_file[:-10] + b"0123456789")
    with pytest.raises(TeacherError, match="no longer matches.*`kdzoo teachers fetch resnet56 --force`"):
        teachers.resolve("resnet56")
    fetch(force=True)
    assert teachers.resolve("resnet56").path.read_bytes() == teacher_file


def test_add_a_checkpoint_fetched_by_hand_with_the_same_checks(server, tmp_path, teacher_file):
    wrong = tmp_path / "by hand" / "resnet56_vanilla" / "ckpt_epoch_240.pth"
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(checkpoint_bytes("resnet20"))
    with pytest.raises(TeacherError, match="not kdzoo's resnet56; nothing was kept.*do not fit architecture"):
        teachers.add(wrong, check=check_teacher_file, say=lambda _: None)
    assert nothing_cached()
    wrong.write_bytes(teacher_file)
    (added,) = teachers.add(wrong, check=check_teacher_file, say=lambda _: None)
    assert added.source == f"added from {wrong.resolve()}" and added.path.read_bytes() == teacher_file
    assert server.requests == []


def test_two_processes_at_once_download_once(server):
    server.delay = 1.0  # the first download is still running when the second process asks
    fetch_in_child = "from kdzoo.teachers import fetch; print(fetch(['resnet56'])[0].sha256)"
    procs = [subprocess.Popen([sys.executable, "-c", fetch_in_child], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(server.requests) == 1
    assert sum("Waiting for another kdzoo process (pid" in out for out in outputs) == 1, outputs
    assert len({out.splitlines()[-1] for out in outputs}) == 1  # the same file for both


def fake_cifar100(root, n: int = 32) -> None:
    """A few random images in torchvision's CIFAR-100 layout (its checksums are patched out by the test)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        data = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(range(n))}
        (folder / split).write_bytes(pickle.dumps(data))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"class{i}" for i in range(100)]}))


def test_pretrained_name_in_distill_eval_and_a_bench_grid(cli, server, tmp_path, monkeypatch, teacher_file, one_thread):
    code, out, err = cli("distill", "--teacher", "pretrained:resnet56", "--student", "resnet8", *TINY_100,
                         "--epochs", "1", "--output-dir", tmp_path / "runs", "--name", "kd")
    assert code == 0, err
    assert "distilling resnet56 -> resnet8" in out
    assert f"teacher: pretrained:resnet56 = {teachers.downloads_dir() / MEMBER} (SHA-256 " in out
    record = {"name": "pretrained:resnet56", "sha256": hashlib.sha256(teacher_file).hexdigest(),
              "source": f"{server.url}/cifar_teachers.tar", "file": str(teachers.downloads_dir() / MEMBER)}
    assert json.loads((tmp_path / "runs" / "kd" / "summary.json").read_text())["teacher_file"] == record
    saved = yaml.safe_load((tmp_path / "runs" / "kd" / "config.yaml").read_text())
    assert saved["teacher"] == "pretrained:resnet56" and saved["teacher_file"] == record
    assert "teacher_file" not in load_run_config(tmp_path / "runs" / "kd")  # a record, not an option

    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    fake_cifar100(tmp_path / "data")
    code, out, err = cli("eval", "pretrained:resnet56", "--data-root", tmp_path / "data", "--device", "cpu")
    assert code == 0, err
    assert "resnet56 on cifar100 (whole test split): top-1" in out
    for command in ("temperature", "maps"):  # the published teacher's dataset by default, as eval takes it
        code, out, err = cli(command, "--teacher", "pretrained:resnet56", "--data-root", tmp_path / "data",
                             "--out", tmp_path / f"{command}.png", "--device", "cpu")
        assert code == 0, err
        assert "cifar100 test image 0" in out

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "common": {"dataset": "synthetic", "dataset_options": {"num_train": 96, "num_test": 64, "num_classes": 100},
                   "batch_size": 32, "progress": False, "tensorboard": False, "device": "cpu", "epochs": 1},
        "teachers": "pretrained:{arch}", "pairs": ["resnet56 -> resnet8"], "methods": ["kd"]}), encoding="utf-8")
    code, out, err = cli("bench", "--grid", grid, "--out", tmp_path / "bench")
    assert code == 0, err
    summary = json.loads((tmp_path / "bench" / "resnet56-resnet8_kd_seed0" / "summary.json").read_text())
    assert summary["teacher"] == "pretrained:resnet56" and summary["teacher_file"] == record
    assert len(server.requests) == 1  # fetched once, by the first run


def test_unknown_or_mismatched_names_fail_before_any_download(cli, server, tmp_path):
    code, _, err = cli("distill", "--teacher", "pretrained:resnet57", "--student", "resnet8", *TINY_100)
    assert code == 2 and "Unknown published teacher 'resnet57'. Did you mean pretrained:resnet56" in err
    code, _, err = cli("distill", "--teacher", "pretrained:resnet56", "--teacher-arch", "resnet110", "--student",
                       "resnet8", *TINY_100)
    assert code == 2 and "is a resnet56, not a resnet110" in err
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"teachers": "pretrained:{arch}", "pairs": ["resnet14 -> resnet8"],
                                    "methods": ["kd"], "common": {"dataset": "synthetic"}}), encoding="utf-8")
    code, _, err = cli("bench", "--grid", grid, "--out", tmp_path / "bench")
    assert code == 2 and "Unknown published teacher 'resnet14'" in err and not (tmp_path / "bench").exists()
    assert server.requests == []


def test_teachers_command_lists_adds_fetches_and_shows_the_downloads_folder(cli, server, tmp_path, archive,
                                                                           teacher_file):
    code, out, _ = cli("teachers")
    assert code == 0 and "pretrained:resnet32x4  79.42" in out and "trusted on TLS alone" in out
    by_hand = tmp_path / "cifar_teachers.tar"
    by_hand.write_bytes(archive)
    code, out, _ = cli("teachers", "add", by_hand)
    assert code == 0 and f"(3.4 MiB, SHA-256 {hashlib.sha256(teacher_file).hexdigest()}; added from {by_hand}" in out
    code, out, _ = cli("teachers", "fetch", "resnet56")
    assert code == 0 and f"pretrained:resnet56: {teachers.downloads_dir() / MEMBER}" in out and server.requests == []
    code, out, _ = cli("teachers")
    row = next(line for line in out.splitlines() if line.startswith("pretrained:resnet56 "))
    assert row.split()[:7] == ["pretrained:resnet56", "72.34", "yes", "3.4", "MiB", "added", "from"]
    code, out, _ = cli("teachers", "--cache-dir")
    assert out.strip() == str(teachers.downloads_dir())
    code, _, err = cli("teachers", "fetch", "resnet57")
    assert code == 2 and "Unknown published teacher 'resnet57'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("grid", ["bench/repdistiller_same_family", "bench/repdistiller_cross_family"])
def test_packaged_grids_and_configs_use_published_teachers_without_fetching_to_plan(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("KDZOO_HOME", str(tmp_path / "home"))
    jobs = plan(load_grid(grid), tmp_path / "runs")
    assert {j.cfg.teacher for j in jobs if j.pair} == {f"pretrained:{t}" for t, _ in load_grid(grid).pairs}
    assert not any(j.role == "teacher" for j in jobs) and not (tmp_path / "home").exists()
    for name in packaged_configs():
        if name.startswith("cifar100/") and name != "cifar100/teacher":
            assert teachers.name_of(read_yaml(name)["teacher"]) in teachers.published_names()


def test_the_teacher_downloads_folder_is_never_called_a_cache(cli, capsys, tmp_path, monkeypatch):
    """"The teacher cache" is the --teacher-cache of a run's teacher outputs; the published teachers' folder, its
    command's listing, help and errors say "downloads folder" (they said "cache", the same word)."""
    monkeypatch.setenv("KDZOO_HOME", str(tmp_path / "home"))
    texts = [cli("teachers")[1]]
    for args in (("teachers", "--help"), ("teachers", "fetch", "--help"), ("teachers", "add", "--help")):
        with pytest.raises(SystemExit):
            cli(*args)
        texts.append(capsys.readouterr().out)
    for text in texts:
        words = text.replace(str(teachers.downloads_dir()), "").replace("~/.cache", "").replace("--cache-dir", "")
        assert "cache" not in words.lower(), text
    assert "folder:  " in texts[0] and "teacher downloads folder" in texts[1]
    with pytest.raises(TeacherError, match="is not in the teacher downloads folder"):
        teachers.verify("resnet56")
