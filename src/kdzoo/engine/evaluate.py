"""Evaluation: top-1/top-5 accuracy and loss over a loader, how they are printed, and a warning when the loss is
absurd."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import all_reduce_sum, is_distributed
from ..models import fits
from .runtime import autocast


def topk_correct(logits: Tensor, labels: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose label is among the k highest logits, for each k (k capped at C)."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices
    hits = top.eq(labels.unsqueeze(1))
    return [int(hits[:, : min(k, maxk)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, amp: str = "none", epoch: int = 0) -> dict[str, float]:
    """Top-1 and top-5 accuracy (%) and mean cross-entropy of ``model`` on ``loader`` (over all ranks'
    shards in a distributed run)."""
    was_training = model.training
    model.eval()
    n = correct1 = correct5 = 0
    loss_sum = 0.0
    for batch in loader.epoch(epoch):
        with autocast(device, amp):
            logits = model(batch.images)
        logits = logits.float()
        loss_sum += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        c1, c5 = topk_correct(logits, batch.labels)
        correct1 += c1
        correct5 += c5
        n += batch.labels.numel()
    model.train(was_training)
    # summed over ranks (on the device for NCCL; single processes stay on the CPU: MPS has no float64)
    totals = torch.tensor([n, correct1, correct5, loss_sum], dtype=torch.float64,
                          device=device if is_distributed() else "cpu")
    n, correct1, correct5, loss_sum = all_reduce_sum(totals).tolist()
    n = max(n, 1)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "loss": loss_sum / n}


#: The fewest classes whose top-5 says something: with five or fewer, every label is among the five highest logits
#: and top-5 is 100 %. Such runs print and summarise top-1 alone; their metrics.csv keeps its ``test_top5`` column,
#: so every run folder has the same columns (resume, ``kdzoo report`` and ``kdzoo plot`` read them).
TOP5_MIN_CLASSES = 6


def reports_top5(num_classes: int) -> bool:
    """Whether top-5 is worth printing for ``num_classes`` classes (:data:`TOP5_MIN_CLASSES`)."""
    return num_classes >= TOP5_MIN_CLASSES


def accuracy_text(result: dict[str, float], num_classes: int) -> str:
    """``top-1 73.80%  top-5 99.40%  loss 0.6579`` for an :func:`evaluate` result; top-5 left out where it is 100 %
    by definition (:func:`reports_top5`)."""
    top5 = f"  top-5 {result['top5']:.2f}%" if reports_top5(num_classes) else ""
    return f"top-1 {result['top1']:.2f}%{top5}  loss {result['loss']:.4f}"


#: An evaluation loss above this many times ln(C) (the loss of a uniform guess over C classes) is absurd: the
#: network gives the true class a probability under C**-100 (geometric mean), far beyond an untrained or a merely
#: overconfident network (a few times ln C).
ABSURD_LOSS_FACTOR = 100


def absurd_loss_warning(loss: float, num_classes: int) -> str | None:
    """A warning naming the likely causes when an evaluation ``loss`` is non-finite or absurd
    (:data:`ABSURD_LOSS_FACTOR`); ``None`` when it is plausible."""
    limit = ABSURD_LOSS_FACTOR * math.log(max(num_classes, 2))
    if math.isfinite(loss) and loss <= limit:
        return None
    why = ("is not finite" if not math.isfinite(loss) else
           f"is absurd (a uniform guess over {num_classes} classes scores ln {num_classes} = "
           f"{limit / ABSURD_LOSS_FACTOR:.3g}; this is over {ABSURD_LOSS_FACTOR} times that)")
    return (f"warning: the evaluation loss {loss:.4g} {why}. "
            f"Likely causes: the BatchNorm running statistics, which evaluation uses, have not settled yet (a short "
            f"run; slower still with a small BatchNorm momentum, e.g. 0.01 in torchvision's mobilenet_v3): train "
            f"more epochs; or the training diverged: lower --lr.")


def check_fits(model: nn.Module, data, what: str) -> None:
    """Fail early, with the reason, when ``model`` cannot classify ``data``'s images
    (:func:`kdzoo.models.fits.check_fits`)."""
    fits.check_fits(model, (data.in_channels, *data.image_size), data.num_classes, what, data.name,
                    f"Use one trained on {data.name}.")
