"""Model zoo: RepDistiller's 22 CIFAR models (state-dict compatible) and torchvision adapters.

>>> from kdzoo.models import create_model, extract
>>> net = create_model("resnet8x4", num_classes=100)
>>> out = extract(net, torch.randn(2, 3, 32, 32))   # out.logits, out.feats
"""

from . import cifar_resnet, mobilenetv2, resnetv2, shufflenetv1, shufflenetv2, torchvision_adapter, vgg, wrn  # noqa: F401  (registration)
from .features import Features, extract, feature_shapes
from .registry import create_model, list_models, model_info, register_model

__all__ = ["Features", "create_model", "extract", "feature_shapes", "list_models", "model_info", "register_model"]
