"""SimKD: the loss against a naive formulation, the projector's reference layout and size, the
frozen reused classifier, map-size matching both ways, and a trained student that reloads (run folder,
``load_model``, ``kdzoo eval``) with the same predictions as in training."""

import csv

import numpy as np
import pytest
import torch

from conftest import TINY, block_mean, images
from kdzoo.data import build_data
from kdzoo.engine.checkpoint import load_model, read_checkpoint, save_atomic
from kdzoo.engine.evaluate import evaluate
from kdzoo.errors import ConfigError
from kdzoo.losses import simkd_loss
from kdzoo.methods import create_method
from kdzoo.models import HeadedStudent, create_model, extract


def test_simkd_loss_matches_a_naive_mse_with_pooling():
    s = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    expected = np.mean((block_mean(s.numpy(), 4) - t.numpy()) ** 2)
    assert float(simkd_loss(s, t)) == pytest.approx(expected, rel=1e-6)
    assert float(simkd_loss(t, s)) == pytest.approx(expected, rel=1e-6)  # the larger map is pooled either way


def test_projector_has_the_reference_layout_and_size():
    teacher = create_model("resnet32x4", num_classes=100).eval()
    method = create_method("simkd", create_model("resnet8x4", num_classes=100), teacher)
    head = method.student_head()
    assert [type(m).__name__ for m in head.projector] == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    # SimKD's projector (Chen et al., CVPR 2022), 256 -> 256 channels, factor 2: 1x1 256->128, 3x3 128->128 and
    # 1x1 128->256 convs without bias, each with a BN: 32768 + 256 + 147456 + 256 + 32768 + 512
    assert sum(p.numel() for p in head.projector.parameters()) == 214016
    assert torch.equal(head.classifier.weight, teacher.fc.weight) and not head.classifier.weight.requires_grad
    assert method.reference_weights().gamma == 0 and method.reference_weights().beta == 1


@pytest.mark.parametrize("student,teacher,pool_to", [("resnet8", "vgg8", 4), ("vgg8", "resnet14", None)])
def test_map_sizes_are_matched_both_ways(student, teacher, pool_to):
    torch.manual_seed(0)
    s_model, t_model = create_model(student, num_classes=10), create_model(teacher, num_classes=10).eval()
    method = create_method("simkd", s_model, t_model)
    assert method.student_head().spec["pool_to"] == pool_to
    deployed = HeadedStudent(s_model, method.student_head())
    s = extract(deployed, images(2))
    with torch.no_grad():
        t = extract(t_model, images(2))
    loss = method(s, t, None)["simkd"]
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in s_model.get_feat_modules().parameters())
    assert method.student_head().projector[0].weight.grad is not None
    assert method.student_head().classifier.weight.grad is None


def test_deployed_logits_are_the_teachers_classifier_on_the_projection():
    torch.manual_seed(0)
    s_model, t_model = create_model("resnet8", num_classes=10).eval(), create_model("resnet14", num_classes=10).eval()
    head = create_method("simkd", s_model, t_model).student_head().eval()
    deployed = HeadedStudent(s_model, head).eval()
    with torch.no_grad():
        backbone_map = extract(s_model, images(3)).head_map
        expected = t_model.fc(head.projector(backbone_map).mean(dim=(2, 3)))
        assert torch.allclose(deployed(images(3)), expected, atol=1e-5)


def test_classes_must_match():
    with pytest.raises(ConfigError, match="same classes"):
        create_method("simkd", create_model("resnet8", num_classes=10), create_model("resnet14", num_classes=100))


def test_a_trained_student_reloads_with_its_head(cli, tmp_path):
    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10)
    save_atomic({"format": "kdzoo", "arch": "resnet14", "num_classes": 10, "in_channels": 3,
                 "model": teacher.state_dict()}, tmp_path / "t.pt")
    code, _, err = cli("distill", "--teacher", tmp_path / "t.pt", "--student", "resnet8", "--method", "simkd", *TINY,
                       "--epochs", "2", "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    data = read_checkpoint(tmp_path / "run" / "checkpoint_last.pt")
    assert data["head"]["kind"] == "reused_classifier" and not any(k.startswith("backbone.") for k in data["model"])
    assert torch.equal(data["head"]["state"]["classifier.weight"], teacher.fc.weight)  # stayed frozen
    model, _ = load_model(tmp_path / "run")
    assert isinstance(model, HeadedStudent)
    bundle = build_data("synthetic", num_train=96, num_test=64, eval_batch_size=256)
    last = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))[-1]
    assert evaluate(model, bundle.test, torch.device("cpu"))["top1"] == pytest.approx(float(last["test_top1"]))
    code, out, err = cli("eval", tmp_path / "run")
    assert code == 0 and f"top-1 {float(last['test_top1']):.2f}%" in out, (out, err)


def test_reference_variant_projects_the_last_stage_and_head_map_variant_the_classifier_input():
    """SimKD's reference code projects feat[-2] of both networks; variant=head_map the maps that feed the
    classifiers."""
    torch.manual_seed(0)
    student, teacher = create_model("ShuffleV2", num_classes=10), create_model("wrn_40_2", num_classes=10).eval()
    reference = create_method("simkd", student, teacher)
    assert reference.student_head().spec["in_channels"] == 464 and reference.student_head().spec["source"] == "stage"
    head_map = create_method("simkd", student, teacher, variant="head_map")
    assert head_map.student_head().spec["in_channels"] == 1024 and head_map.student_head().spec["source"] == "head"
    deployed = HeadedStudent(student, reference.student_head()).eval()
    with torch.no_grad():
        s, t = extract(deployed, images(2)), extract(teacher, images(2))
        stage = extract(student, images(2)).stages[-1]
        expected = teacher.fc(reference.student_head().projector(stage).mean(dim=(2, 3)))
    assert torch.allclose(s.logits, expected, atol=1e-5)
    assert float(reference(s, t, None)["simkd"]) == pytest.approx(float(simkd_loss(s.head_map, t.stages[-1])), rel=1e-6)
    assert not torch.allclose(t.stages[-1], t.head_map)  # WRN: the reference's target is taken before the final BN-ReLU


def test_reference_variant_refuses_a_teacher_whose_last_stage_is_not_its_classifier_input():
    student, teacher = create_model("resnet8", num_classes=10), create_model("MobileNetV2", num_classes=10).eval()
    with pytest.raises(ConfigError, match="variant=head_map"):
        create_method("simkd", student, teacher)
    assert create_method("simkd", student, teacher, variant="head_map").student_head().spec["out_channels"] == 1280
    with pytest.raises(ConfigError, match="variant must be 'reference'"):
        create_method("simkd", student, teacher, variant="paper")
