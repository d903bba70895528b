"""Whether a teacher fits a run's data, told from what is declared: a published teacher's catalog entry (CIFAR-100:
100 classes, 3x32x32 images), a kdzoo checkpoint's recorded config, and the dataset registry with the run's dataset
options. A published teacher that cannot fit is refused before anything is downloaded; a teacher used on images of
another size than it was trained on gets a warning that names both sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data import dataset_info
from ..errors import ConfigError, UnknownNameError
from ..teachers import DATASET, is_pretrained, name_of
from ..teachers.catalog import CLASSES, INPUT


@dataclass(frozen=True)
class DeclaredInput:
    """What a dataset declares of its images and labels; ``classes`` None where only the data tells (a folder)."""

    classes: int | None
    channels: int
    size: tuple[int, int]

    def text(self) -> str:
        return f"{self.classes or 'its own number of'} classes, {self.channels}x{self.size[0]}x{self.size[1]} images"


PUBLISHED = DeclaredInput(CLASSES, INPUT[0], INPUT[1:])


def declared_input(dataset: str, options: dict[str, Any]) -> DeclaredInput:
    """``dataset``'s classes, channels and image size from the registry, with the options that change them
    (``num_classes``, ``channels``, ``image_size``) as given."""
    info = dataset_info(dataset)
    classes, channels, size = (options.get(key) for key in ("num_classes", "channels", "image_size"))
    classes = classes if isinstance(classes, int) else info["classes"]
    return DeclaredInput(classes if isinstance(classes, int) else None,
                         channels if isinstance(channels, int) else info["in_channels"],
                         (size, size) if isinstance(size, int) else tuple(info["image_size"]))


def check_published_fits(spec: str, dataset: str, options: dict[str, Any]) -> None:
    """Refuse the published teacher ``spec`` (``pretrained:NAME``) for ``dataset`` when its classes or channels
    differ from the teacher's, before it is downloaded."""
    name_of(spec)
    given = declared_input(dataset, options)
    if given.classes not in (None, PUBLISHED.classes) or given.channels != PUBLISHED.channels:
        raise ConfigError(f"{spec} was trained on {DATASET} ({PUBLISHED.text()}) and cannot classify {dataset} "
                          f"({given.text()}); nothing was downloaded. Use it with --dataset {DATASET}, or a teacher "
                          f"trained on {dataset} (`kdzoo train --dataset {dataset} ...`, then --teacher RUN_FOLDER).")


def trained_size(spec: object, checkpoint: dict[str, Any]) -> tuple[int, int] | None:
    """The image size the teacher ``spec`` was trained at: the catalog's for a published teacher, the recorded
    config's for a kdzoo checkpoint; None where nothing says (a RepDistiller file, a bare state dict)."""
    if is_pretrained(spec):
        return PUBLISHED.size
    config = checkpoint.get("config") or {}
    try:
        return declared_input(config["dataset"], config.get("dataset_options") or {}).size
    except (KeyError, TypeError, UnknownNameError):
        return None


#: The fix :func:`size_warning` names for a run (``{old}``/``{new}``: the sizes, ``{side}``: the trained height).
RUN_FIX = ("Use {old} images (the dataset it was trained on, or --dataset-opt image_size={side} where the dataset has "
           "that option) or a teacher trained at {new}.")


def size_warning(what: str, spec: object, checkpoint: dict[str, Any], size: tuple[int, int],
                 fix: str = RUN_FIX) -> str | None:
    """A warning when ``what`` (the teacher, the model in) ``spec``, already checked to run at ``size``, was trained
    at another size; ``fix`` (see :data:`RUN_FIX`) says what to do."""
    trained = trained_size(spec, checkpoint)
    if trained is None or tuple(trained) == tuple(size):
        return None
    old, new = (f"{s[0]}x{s[1]}" for s in (trained, size))
    return (f"{what} {spec} was trained on {old} images and is used on {new} ones: it runs (its pooling adapts) but "
            f"on images of a size it never learnt, so expect it to do worse. "
            + fix.format(old=old, new=new, side=trained[0]))
