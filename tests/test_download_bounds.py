"""Downloads and archives cannot fill the disk, and a published teacher that cannot fit the data is refused before
any download (issue 32, items 6-7 and a new user's report): an endless stream stops at the bound, an announced size
over it is refused before writing, a sparse or crafted teacher member is refused from its header, a gzip is stopped
once it inflates past the bound; a teacher trained at another image size is named with both sizes. Every download
goes to the loopback server of ``test_teachers``, which counts the requests."""

import gzip
import tarfile

import pytest

import test_teachers
from conftest import TINY
from kdzoo import teachers
from kdzoo.config import RunConfig
from kdzoo.engine.build import build
from kdzoo.errors import TeacherError
from kdzoo.teachers import catalog
from kdzoo.teachers.catalog import KNOWN_TEACHERS, Known
from kdzoo.teachers.download import download
from kdzoo.teachers.safe_tar import unpack_teachers
from test_teachers import MEMBER, entry, fake_cifar100, fetch, nothing_cached, tar_bytes

#: test_teachers' fixtures: the loopback server (it counts requests), the archive it serves and its teacher.
server, archive, teacher_file = test_teachers.server, test_teachers.archive, test_teachers.teacher_file

BOUND = 1 << 20  # the archive's bound in these tests (the real cap is 4 GiB)
CAP_TEXT = r"1,048,576 bytes \(1 MiB\), kdzoo's cap for it while its size is not recorded"


@pytest.fixture
def small_bound(monkeypatch):
    """The archive's bound lowered to 1 MiB, as a cap (its size not recorded)."""
    monkeypatch.setattr(catalog, "KNOWN_ARCHIVE", Known(cap=BOUND))


def files_under(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("known,limit_text", [(Known(cap=BOUND), CAP_TEXT),
                                              (Known(size=BOUND), r"1,048,576 bytes, its published size")])
def test_an_endless_stream_stops_at_the_bound_and_keeps_nothing_to_resume(server, monkeypatch, known, limit_text):
    monkeypatch.setattr(catalog, "KNOWN_ARCHIVE", known)
    server.mode, server.endless = "endless", 8 * BOUND  # no Content-Length; 8x the bound (so that it ends at all)
    with pytest.raises(TeacherError, match=f"sends more bytes, without announcing how many, more than "
                                           f"cifar_teachers.tar can be \\({limit_text}\\): kdzoo stopped and kept "
                                           f"nothing"):
        fetch()
    assert nothing_cached() and len(server.requests) == 1  # no partial file, no attempt to resume


def test_a_content_length_over_the_bound_is_refused_before_writing(server, small_bound, tmp_path):
    server.mode, server.announce = "announce", 10**12  # announces 1 TB, then sends nothing
    target = tmp_path / "cifar_teachers.tar"
    with pytest.raises(TeacherError, match=f"announces 1,000,000,000,000 bytes, more than test can be \\({CAP_TEXT}"):
        download(f"{server.url}/cifar_teachers.tar", target, "test", catalog.KNOWN_ARCHIVE)
    assert files_under(tmp_path) == [] and len(server.requests) == 1


def test_a_partial_file_larger_than_the_bound_is_not_resumed(server, archive, tmp_path):
    target = tmp_path / "cifar_teachers.tar"
    target.with_name(target.name + ".part").write_bytes(bytes(len(archive) + 1))
    got = download(f"{server.url}/cifar_teachers.tar", target, "test", Known(size=len(archive)))
    assert got.read_bytes() == archive
    assert server.requests == [("/cifar_teachers.tar", None)]  # started afresh, no Range


def sparse_tar(name: str, real_size: int) -> bytes:
    """A tar (2.5 KB) whose member ``name`` is a GNU sparse file of ``real_size`` bytes storing one block of zeros:
    the header is written by hand (``tarfile`` reads sparse members but cannot write them)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 512
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[386:410] = b"%011o\0%011o\0" % (0, 512)  # the sparse map: 512 bytes stored at offset 0
    header[483:495] = b"%011o\0" % real_size  # the file's real size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + bytes(512) + bytes(1024)


def test_a_sparse_teacher_member_is_refused_from_its_header_before_a_byte_is_written(server, tmp_path):
    bound = KNOWN_TEACHERS["resnet56"].limit
    crafted = tmp_path / "cifar_teachers.tar"
    crafted.write_bytes(sparse_tar(MEMBER, bound + 1))
    with tarfile.open(crafted) as tar:  # what a reader sees: a small archive whose member unpacks to bound + 1 bytes
        assert tar.getmember(MEMBER).size == bound + 1 and crafted.stat().st_size < 10_000
    refused = f"declares {bound + 1:,} bytes, more than the teacher resnet56 can be .*before writing any of it"
    with pytest.raises(TeacherError, match=refused):
        unpack_teachers(crafted, tmp_path / "out")
    assert files_under(tmp_path / "out") == []
    with pytest.raises(TeacherError, match=refused):
        teachers.add(crafted, say=lambda _: None)
    assert nothing_cached()


def test_a_gzip_whose_teacher_inflates_past_its_bound_is_refused_from_its_header(tmp_path):
    bound = KNOWN_TEACHERS["resnet56"].limit
    bomb = tmp_path / "cifar_teachers.tar"  # 4 * bound of zeros as the teacher: about 65 KB compressed
    bomb.write_bytes(gzip.compress(tar_bytes((entry(MEMBER), bytes(4 * bound))), compresslevel=1))
    assert bomb.stat().st_size < bound // 16
    with pytest.raises(TeacherError, match=f"declares {4 * bound:,} bytes, more than the teacher resnet56"):
        unpack_teachers(bomb, tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_a_gzip_is_stopped_as_soon_as_it_inflates_past_the_archive_bound(small_bound, tmp_path):
    bomb = tmp_path / "cifar_teachers.tar"  # a member of 8x the bound of zeros: 8 KB compressed
    bomb.write_bytes(gzip.compress(tar_bytes((entry("cifar_teachers/zeros"), bytes(8 * BOUND)))))
    with pytest.raises(TeacherError, match=f"inflates to more than cifar_teachers.tar can be \\({CAP_TEXT}\\): kdzoo "
                                           f"stopped inflating it there and unpacked nothing"):
        unpack_teachers(bomb, tmp_path / "out")
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize("dataset,given", [("fashion_mnist", "10 classes, 1x32x32 images"),
                                           ("cifar10", "10 classes, 3x32x32 images")])
def test_a_published_teacher_that_cannot_fit_the_data_is_refused_before_any_download(cli, server, dataset, given):
    refused = (f"pretrained:resnet56 was trained on cifar100 (100 classes, 3x32x32 images) and cannot classify "
               f"{dataset} ({given}); nothing was downloaded.")
    code, _, err = cli("distill", "--teacher", "pretrained:resnet56", "--student", "resnet8", "--dataset", dataset,
                       "--device", "cpu")
    assert code == 2 and refused in err and "Traceback" not in err
    code, _, err = cli("eval", "pretrained:resnet56", "--dataset", dataset, "--device", "cpu")
    assert code == 2 and refused in err and "Traceback" not in err
    code, _, err = cli("distill", "--teacher", "pretrained:resnet56", "--student", "resnet8", *TINY)
    assert code == 2 and "cannot classify synthetic (10 classes, 3x32x32 images)" in err
    assert server.requests == [] and nothing_cached()


def run_config(teacher, image_size: int) -> RunConfig:
    return RunConfig(model="resnet8", teacher=str(teacher), dataset="synthetic", device="cpu", batch_size=32,
                     dataset_options={"num_train": 64, "num_test": 32, "num_classes": 100 if "pretrained:" in
                                      str(teacher) else 10, "image_size": image_size})


def test_a_published_teacher_used_at_another_image_size_is_named_with_both_sizes(server):
    warning = ("the teacher pretrained:resnet56 was trained on 32x32 images and is used on 64x64 ones: it runs (its "
               "pooling adapts) but on images of a size it never learnt")
    assert [c for c in build(run_config("pretrained:resnet56", 64)).caveats if "was trained on" in c] == [
        warning + ", so expect it to do worse. Use 32x32 images (the dataset it was trained on, or --dataset-opt "
                  "image_size=32 where the dataset has that option) or a teacher trained at 64x64."]
    assert not any("was trained on" in c for c in build(run_config("pretrained:resnet56", 32)).caveats)


def test_a_kdzoo_teacher_used_at_another_image_size_is_named_with_both_sizes(tiny_teacher):
    notes = [c for c in build(run_config(tiny_teacher, 48)).caveats if "was trained on" in c]
    assert len(notes) == 1
    assert f"the teacher {tiny_teacher} was trained on 32x32 images and is used on 48x48 ones" in notes[0]
    assert not any("was trained on" in c for c in build(run_config(tiny_teacher, 32)).caveats)


def test_eval_on_images_of_another_size_than_the_run_was_trained_on_warns(cli, tmp_path, monkeypatch, one_thread):
    code, _, err = cli("train", "--model", "resnet8", *TINY, "--dataset-opt", "image_size=48", "--dataset-opt",
                       "num_classes=100", "--epochs", "1", "--output-dir", tmp_path / "runs", "--name", "r")
    assert code == 0, err
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    fake_cifar100(tmp_path / "data")
    code, out, err = cli("eval", tmp_path / "runs" / "r", "--dataset", "cifar100", "--data-root", tmp_path / "data",
                         "--device", "cpu")
    assert code == 0, err
    assert (f"warning: the model in {tmp_path / 'runs' / 'r'} was trained on 48x48 images and is used on 32x32 ones"
            in out) and "Evaluate it on the dataset it was trained on (leave out --dataset)." in out
