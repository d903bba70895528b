"""What a network writes into a checkpoint, and how it reads it back.

A plain network stores its state dict under ``model``. Wrappers own their entries: a network that
defines ``checkpoint_entries()`` / ``load_checkpoint_entries(data, load_weights)`` (a student
deployed with SimKD's head, a multi-exit network, a hook-tapped model) adds or maps its own, so the
checkpoint code never switches on the wrapper's type. ``load_weights(module, state_dict)`` is the
checked loader of :mod:`kdzoo.engine.checkpoint` (clear errors on missing or mis-shaped keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

WeightLoader = Callable[[nn.Module, dict], None]


def checkpoint_entries(model: nn.Module) -> dict[str, Any]:
    """The checkpoint entries of ``model``: ``{"model": state_dict}`` plus whatever its wrappers add."""
    own = getattr(model, "checkpoint_entries", None)
    return own() if callable(own) else {"model": model.state_dict()}


def load_checkpoint_entries(model: nn.Module, data: dict[str, Any], load_weights: WeightLoader) -> None:
    """Load what :func:`checkpoint_entries` wrote back into a network of the same structure."""
    own = getattr(model, "load_checkpoint_entries", None)
    if callable(own):
        own(data, load_weights)
    else:
        load_weights(model, data["model"])
