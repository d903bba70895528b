"""``kdzoo maps``: AT's attention maps (Zagoruyko & Komodakis, ICLR 2017) of a teacher and students on one test
image: one H x W map per stage, unit-norm as AT compares them, whose per-stage distances add up to AT's loss; the
command prints their shapes and distances, writes the figure and refuses a class the dataset does not have."""

import pytest
import torch
from matplotlib.image import imread

from conftest import TINY
from kdzoo.attention_maps import at_distances, attention_maps, stage_outputs
from kdzoo.losses.at import at_loss
from kdzoo.models import create_model

PNG = b"\x89PNG\r\n\x1a\n"


def test_one_unit_map_per_stage_and_the_distances_add_up_to_the_at_loss():
    torch.manual_seed(0)
    teacher, student = create_model("resnet14", num_classes=10).eval(), create_model("resnet8", num_classes=10).eval()
    image = torch.randn(1, 3, 32, 32)
    stages_t, stages_s = stage_outputs(teacher, image), stage_outputs(student, image)
    maps = attention_maps(stages_t)
    assert [tuple(m.shape) for m in maps] == [(32, 32), (16, 16), (8, 8)]
    assert all(float(m.pow(2).sum()) == pytest.approx(1.0) for m in maps)
    assert all(float(m.min()) >= 0 for m in maps)
    distances = at_distances(stages_s, stages_t)
    assert len(distances) == 3 and sum(distances) == pytest.approx(float(at_loss(stages_s, stages_t)))
    assert at_distances(stages_t, stages_t) == [0.0, 0.0, 0.0]


def test_the_command_prints_the_maps_and_writes_the_figure(cli, tiny_teacher, tmp_path):
    student = tmp_path / "s"
    assert cli("train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "s")[0] == 0
    out_png = tmp_path / "maps" / "at.png"
    code, out, err = cli("maps", "--teacher", tiny_teacher, "--student", student, student, "--class", "class3",
                         "--out", out_png, "--device", "cpu")
    assert code == 0, err
    assert out.startswith("synthetic test image 3 (class class3): attention maps")
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()
            if line.startswith(("teacher /", "student /"))}
    assert rows == {str(tiny_teacher): ["32x32", "16x16", "8x8"], str(student): ["32x32", "16x16", "8x8"]}
    assert "AT's term against the teacher per stage" in out and f"plot: {out_png}" in out
    assert out_png.read_bytes().startswith(PNG)
    height, width, _ = imread(out_png).shape
    assert width > height > 300  # three rows (teacher and two students) of four panels (the image and three maps)
    code, _, err = cli("maps", "--teacher", tiny_teacher, "--class", "Sneakers", "--out", out_png, "--device", "cpu")
    assert code == 2 and "--class 'Sneakers' is not a class of synthetic; its classes: class0" in err
