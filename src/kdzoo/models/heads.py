"""Students deployed with a head that their distillation method trained: SimKD's reused teacher
classifier (Chen, Mei, Zhang, Wang, Feng, Chen, "Knowledge Distillation with the Reused Teacher
Classifier", CVPR 2022).

:class:`HeadedStudent` wraps a network (the backbone) and a :class:`ReusedClassifierHead`; it
answers the same feature protocol as every kdzoo network, so training, evaluation, ``kdzoo eval``
and later distillation use the deployed head. Its checkpoint entries are the backbone's (the plain
state dict under ``model``) plus the head under ``head`` (kind, spec, state).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .entries import checkpoint_entries, load_checkpoint_entries
from .features import TAPS, FeatureRequest, Features, FeatureSupport, model_name, support_of
from .layers import FeatureModel, global_pool


class ReusedClassifierHead(nn.Module):
    """SimKD's projector P then a frozen copy of the teacher's classifier on its global average:

        logits = W_t * GAP(P(f_s)) + b_t,
        P = Conv1x1(c_s -> c_t/f)-BN-ReLU, Conv3x3(c_t/f -> c_t/f)-BN-ReLU, Conv1x1(c_t/f -> c_t)-BN-ReLU

    (``projector.0`` ... ``projector.8``, bias-free convs, f = ``factor`` 2). With ``pool_to`` the
    student's map is first average-pooled to that size (the teacher's, when the student's is larger).
    ``source`` says which student map f_s is: ``"stage"`` (the last stage's output, SimKD's reference) or
    ``"head"`` (the student's head map, the one its own classifier pools; also heads saved before ``source``
    existed).
    """

    kind = "reused_classifier"

    def __init__(self, in_channels: int, out_channels: int, num_classes: int, factor: int = 2,
                 pool_to: int | None = None, source: str = "head"):
        super().__init__()
        mid = out_channels // factor
        self.projector = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(out_channels, num_classes).requires_grad_(False)
        self.spec = {"in_channels": in_channels, "out_channels": out_channels, "num_classes": num_classes,
                     "factor": factor, "pool_to": pool_to, "source": source}

    def project(self, head_map: Tensor) -> Tensor:
        """P(f_s), after pooling f_s to ``pool_to`` when it is larger."""
        pool_to = self.spec["pool_to"]
        if pool_to is not None and head_map.shape[-1] > pool_to:
            head_map = F.adaptive_avg_pool2d(head_map, pool_to)
        return self.projector(head_map)

    def forward(self, head_map: Tensor) -> Tensor:
        return self.classifier(global_pool(self.project(head_map)))


HEADS = {ReusedClassifierHead.kind: ReusedClassifierHead}


class HeadedStudent(FeatureModel):
    """A network whose own classifier is replaced, at deployment, by ``head`` applied to its last stage's map or its
    head map (the head's ``source``).

    Features: the backbone's taps, with the pooled vector and the head map taken after the head's
    projection (what the deployed classifier reads)."""

    def __init__(self, backbone: nn.Module, head: ReusedClassifierHead):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.kdzoo_arch = model_name(backbone)

    #: The backbone's own classifier is unused: DistributedDataParallel must look for unused parameters.
    ddp_find_unused = True

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        out = self.backbone.forward_taps(x, FeatureRequest(taps=True, preact=request.preact))
        projected = self.head.project(out.stages[-1] if self.head.spec["source"] == "stage" else out.head_map)
        pooled = global_pool(projected)
        return Features(self.head.classifier(pooled), [*out.feats[:-1], pooled], projected)

    def feature_support(self) -> FeatureSupport:
        return support_of(self.backbone)

    def get_classifier(self) -> nn.Linear:
        return self.head.classifier

    def get_feat_modules(self) -> nn.ModuleList:
        return self.backbone.get_feat_modules()

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return self.backbone.get_bn_before_relu()

    def checkpoint_entries(self) -> dict[str, Any]:
        """The backbone's entries plus the head: kind, spec and weights (what :func:`attach_head` rebuilds)."""
        entry = {"kind": self.head.kind, "spec": dict(self.head.spec), "state": self.head.state_dict()}
        return {**checkpoint_entries(self.backbone), "head": entry}

    def load_checkpoint_entries(self, data: dict[str, Any], load_weights) -> None:
        load_checkpoint_entries(self.backbone, data, load_weights)
        self.head.load_state_dict(data["head"]["state"])


def attach_head(backbone: nn.Module, entry: dict[str, Any]) -> HeadedStudent:
    """Rebuild a :class:`HeadedStudent` from a checkpoint's ``head`` entry (weights loaded)."""
    head = HEADS[entry["kind"]](**entry["spec"])
    head.load_state_dict(entry["state"])
    return HeadedStudent(backbone, head.to(next(backbone.parameters()).device))
