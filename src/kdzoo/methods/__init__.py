"""Distillation methods, one module each, looked up by name.

>>> from kdzoo.methods import create_method, list_methods
>>> method = create_method("kd", student, teacher)

Every module of this package other than the machinery below registers one method with
``@register_method``; they are all imported here, so adding a method is adding one file.
"""

import importlib
import pkgutil

from .base import FEATURE_READS, LOGIT_READS, InitStage, LogitStdDefaults, LossWeights, Method, Reads, check_reads
from .objective import Objective
from .registry import create_method, list_methods, method_class, method_needs, method_options, register_method

MACHINERY = {"base", "objective", "registry", "connectors", "options"}
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in MACHINERY:
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["FEATURE_READS", "LOGIT_READS", "Reads", "check_reads", "InitStage", "LogitStdDefaults", "LossWeights",
           "Method", "Objective", "create_method", "list_methods", "method_class", "method_needs", "method_options",
           "register_method"]
