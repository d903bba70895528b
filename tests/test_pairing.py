"""Runs of one seed differ by their method alone, whatever the method: the same initial student weights, the same
batches (order and augmentation) and the same global RNG state after building (so dropout draws the same masks).
`kdzoo report`'s paired gains (method minus vanilla, per seed) rely on it."""

import pytest
import torch

from conftest import models
from kdzoo.config import RunConfig
from kdzoo.distiller import Distiller
from kdzoo.engine.build import build
from kdzoo.models import unwrap

COMMON = {"dataset": "synthetic", "dataset_options": {"num_train": 96, "num_test": 64}, "batch_size": 32,
          "device": "cpu", "epochs": 1, "seed": 3, "model": "resnet8", "progress": False, "tensorboard": False}
#: logit methods, connectors (FitNet), embeddings and memory banks drawn at random (CRD), a head (SimKD), a strong
#: second view (MLKD), exits and no teacher (BYOT)
METHODS = ["kd", "dkd", "fitnet", "crd", "simkd", "mlkd", "byot"]


def network(student: torch.nn.Module) -> torch.nn.Module:
    """The student network as built, without SimKD's head, BYOT's exits or hook taps."""
    while hasattr(student, "backbone"):
        student = student.backbone
    return unwrap(student)


def built(method: str | None, teacher) -> dict:
    """What a run of ``method`` (None: `kdzoo train`) starts from: the student's weights, the global RNG after
    building, and every batch of its first epoch."""
    distill = {} if method is None else {"method": method, **({} if method == "byot" else {"teacher": str(teacher)})}
    setup = build(RunConfig(**COMMON, **distill))
    rng = torch.get_rng_state()
    weights = {k: v.clone() for k, v in network(setup.distiller.student).state_dict().items()}
    batches = [(b.images.clone(), b.labels.clone(), b.index.clone()) for b in setup.data.train.epoch(1)]
    return {"rng": rng, "weights": weights, "batches": batches, "dropout": torch.rand(8)}


def test_a_seed_gives_every_method_the_same_student_batches_and_rng(tiny_teacher, one_thread):
    vanilla = built(None, tiny_teacher)
    for method in METHODS:
        run = built(method, tiny_teacher)
        assert run["weights"].keys() == vanilla["weights"].keys(), method
        assert all(torch.equal(run["weights"][k], v) for k, v in vanilla["weights"].items()), \
            f"{method}: other initial student weights than the vanilla run of the seed"
        assert len(run["batches"]) == len(vanilla["batches"]) > 1
        for ours, theirs in zip(run["batches"], vanilla["batches"], strict=True):
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True)), f"{method}: other batches"
        assert torch.equal(run["rng"], vanilla["rng"]), f"{method}: the method drew from the global RNG"
        assert torch.equal(run["dropout"], vanilla["dropout"])
    other_seed = build(RunConfig(**{**COMMON, "seed": 4}))
    assert not torch.equal(network(other_seed.distiller.student).conv1.weight, vanilla["weights"]["conv1.weight"])


@pytest.mark.parametrize("method", ["fitnet", "crd"])
def test_the_distiller_builds_the_method_from_its_own_seeded_generator(method):
    """The global RNG is left as it was; the method's initial values follow the seed (reproducible, not constant)."""
    labels = torch.arange(16) % 10

    def method_state(seed):
        student, teacher = models("resnet8", "resnet14")
        torch.manual_seed(seed)
        before = torch.get_rng_state()
        distiller = Distiller(student, teacher, method, train_labels=labels)
        assert torch.equal(torch.get_rng_state(), before)
        return {k: v for k, v in distiller.objective.state_dict().items() if v.is_floating_point()}

    first, again, other = method_state(0), method_state(0), method_state(1)
    assert first and all(torch.equal(v, again[k]) for k, v in first.items())
    assert any(not torch.equal(v, other[k]) for k, v in first.items() if v.numel() > 1)
