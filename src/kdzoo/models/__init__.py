"""Networks: RepDistiller's 22 CIFAR models (state-dict compatible), torchvision and timm models by name,
and any ``nn.Module`` through hook taps, all behind one feature protocol (:mod:`kdzoo.models.features`).

>>> from kdzoo.models import create_model, extract, wrap_model
>>> net = create_model("resnet8x4", num_classes=100)
>>> out = extract(net, torch.randn(2, 3, 32, 32))   # out.logits, out.feats, out.head_map
>>> mine = wrap_model(my_net, feature_layers=["layer1", "layer2", "layer3"])
>>> unwrap(mine) is my_net                          # your own module, to save or deploy
"""

from . import cifar_resnet, mobilenetv2, resnetv2, shufflenetv1, shufflenetv2, tv_models, vgg, wrn  # noqa: F401
from .entries import checkpoint_entries, load_checkpoint_entries
from .external import is_external
from .features import (
                       LOGITS,
                       TAPS,
                       FeatureRequest,
                       Features,
                       FeatureSupport,
                       extract,
                       feature_shapes,
                       model_name,
                       run_model,
                       speaks_taps,
                       support_of,
)
from .heads import HeadedStudent, ReusedClassifierHead, attach_head
from .multi_exit import ExitHead, MultiExitNet, attach_exits
from .registry import create_model, list_models, model_info, register_model
from .stage_search import StagesNotFound
from .tapped import TappedModel, tokens_to_map, unwrap, wrap_model

__all__ = ["LOGITS", "TAPS", "ExitHead", "FeatureRequest", "FeatureSupport", "Features", "HeadedStudent",
           "MultiExitNet", "ReusedClassifierHead", "StagesNotFound", "TappedModel", "attach_exits", "attach_head",
           "checkpoint_entries", "create_model", "extract", "feature_shapes", "is_external", "list_models",
           "load_checkpoint_entries", "model_info", "model_name", "register_model", "run_model", "speaks_taps",
           "support_of", "tokens_to_map", "unwrap", "wrap_model"]
