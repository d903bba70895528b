"""One test image, by number or by class, and the models that look at it (the teacher first, then the students):
what ``kdzoo temperature`` and ``kdzoo maps`` show."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import upgrade_saved_config
from ..errors import ConfigError
from ..teachers import DATASET, is_pretrained


@dataclass
class TestImage:
    """The models in eval mode (the teacher first), the test batch holding the image and where it is in it."""

    models: list[nn.Module]
    images: Tensor
    position: int
    label: int
    classes: list[str]
    description: str


@torch.no_grad()
def find_test_image(teacher: str, students: list[str], dataset: str | None, data_root: str | None, download: bool,
                    index: int | None, class_name: str | None, batch_size: int, device: str) -> TestImage:
    """Load the teacher and the students, and find test image ``index`` (or the first image of ``class_name``;
    image 0 when neither is given) in the test set the teacher was trained on (its recorded config's, CIFAR-100 for
    a published ``pretrained:NAME``), or ``dataset``."""
    from ..data import build_data
    from ..engine import load_model
    from ..engine.evaluate import check_fits
    from ..engine.runtime import resolve_device

    if index is not None and class_name:
        raise ConfigError("Give --index N or --class NAME, not both.")
    device = resolve_device(device)
    model_t, saved = load_model(teacher, device=device)
    config = upgrade_saved_config(saved.get("config") or {})[0]
    dataset = dataset or config.get("dataset") or (DATASET if is_pretrained(teacher) else None)
    if dataset is None:
        raise ConfigError(f"{teacher} does not say which dataset it was trained on: pass --dataset NAME.")
    same = config.get("dataset") == dataset
    data = build_data(dataset, root=data_root or (config.get("data_root") if same else None), download=download,
                      eval_batch_size=batch_size, device=device, seed=config.get("seed", 0) if same else 0,
                      **(config.get("dataset_options", {}) if same else {}))
    check_fits(model_t, data, "teacher")
    models = [model_t]
    for student in students:
        models.append(load_model(student, device=device)[0])
        check_fits(models[-1], data, "student")
    for model in models:
        model.eval()
    classes = list(data.class_names)
    target = None
    if class_name is not None:
        if class_name not in classes:
            raise ConfigError(f"--class {class_name!r} is not a class of {dataset}; its classes: {', '.join(classes)}.")
        target = classes.index(class_name)
    index = 0 if index is None and target is None else index
    for batch in data.test.epoch(0):
        hits = (batch.index == index) if index is not None else (batch.labels == target)
        if bool(hits.any()):
            pos = int(hits.nonzero()[0])
            label = int(batch.labels[pos])
            return TestImage(models, batch.images, pos, label, classes,
                             f"{dataset} test image {int(batch.index[pos])} (class {classes[label]})")
    what = f"image {index}" if index is not None else f"an image of class {class_name!r}"
    raise ConfigError(f"The {dataset} test split ({data.test.num_samples} images) has no {what}: pick --index between "
                      f"0 and {data.test.num_samples - 1}.")
