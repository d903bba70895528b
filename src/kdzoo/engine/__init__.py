"""The training engine: one loop for teacher training and distillation, evaluation, checkpoints."""

from .checkpoint import load_model, load_teacher
from .evaluate import evaluate
from .trainer import train

__all__ = ["evaluate", "load_model", "load_teacher", "train"]
