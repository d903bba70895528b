"""Model zoo: RepDistiller's 22 CIFAR models (state-dict compatible) and torchvision adapters.

>>> from kdzoo.models import create_model, extract
>>> net = create_model("resnet8x4", num_classes=100)
>>> out = extract(net, torch.randn(2, 3, 32, 32))   # out.logits, out.feats
"""

from . import cifar_resnet, mobilenetv2, resnetv2, shufflenetv1, shufflenetv2, torchvision_adapter, vgg, wrn  # noqa: F401  (registration)
from .features import Features, extract, feature_shapes
from .heads import HeadedStudent, ReusedClassifierHead, attach_head
from .multi_exit import ExitHead, MultiExitNet, attach_exits
from .registry import create_model, list_models, model_info, register_model

__all__ = ["ExitHead", "Features", "HeadedStudent", "MultiExitNet", "ReusedClassifierHead", "attach_exits", "attach_head", "create_model", "extract", "feature_shapes", "list_models", "model_info", "register_model"]
