"""Distillation methods, one module each, looked up by name.

>>> from kdzoo.methods import create_method, list_methods
>>> method = create_method("kd", student, teacher)
"""

from . import kd  # noqa: F401  (registration)
from .base import LossWeights, Method
from .objective import Objective
from .registry import create_method, list_methods, method_class, method_options, register_method

__all__ = ["LossWeights", "Method", "Objective", "create_method", "list_methods", "method_class", "method_options", "register_method"]
