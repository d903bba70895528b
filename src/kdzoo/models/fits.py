"""Whether a network fits the images and the classes it is used with, checked before training: the one rule for
the command line's teacher and checkpoints (against the dataset) and the :class:`~kdzoo.Distiller`'s teacher
(against its student)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import KdzooError
from .features import model_name


def predicted_classes(model: nn.Module, input_shape: tuple[int, ...], what: str, images: str) -> int:
    """How many classes ``model`` (the ``what``) predicts for one image of ``input_shape`` (C, H, W), run in eval
    mode without gradients; a :class:`KdzooError` when it cannot run on such images (``images`` names them)."""
    param = next(model.parameters(), None)
    probe = torch.zeros(1, *input_shape, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(probe)
    except RuntimeError as exc:
        raise KdzooError(f"The {what} ({model_name(model)}) cannot run on {images} "
                         f"({'x'.join(map(str, input_shape))}): {str(exc).splitlines()[0]}. "
                         f"Was it trained on another dataset?") from None
    finally:
        model.train(was_training)
    return out.shape[1]


def check_fits(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, what: str, against: str,
               fix: str) -> None:
    """Fail early, with the reason, when ``model`` (the ``what``) cannot run on ``against``'s images of
    ``input_shape`` or predicts other than its ``num_classes`` classes (:func:`check_classes`)."""
    check_classes(what, predicted_classes(model, input_shape, what, f"{against} images"), against, num_classes, fix)


def check_classes(what: str, predicted: int, against: str, num_classes: int, fix: str) -> None:
    """A network (the ``what``) that predicts ``predicted`` classes is used with ``against`` (a dataset's name, "the
    student"), which has ``num_classes``: refused unless they are the same; ``fix`` says what to do."""
    if predicted != num_classes:
        raise KdzooError(f"The {what} predicts {predicted} classes but {against} has {num_classes}. {fix}")
