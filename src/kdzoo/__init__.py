"""kdzoo: knowledge distillation for PyTorch.

Public API: :class:`Distiller` (any method in any training loop, any network), :mod:`kdzoo.models`
(``create_model``, ``list_models``, ``extract``, ``wrap_model``), :mod:`kdzoo.losses` (every
distillation loss as a plain function), :mod:`kdzoo.methods` (``create_method``, ``list_methods``),
:mod:`kdzoo.data` (``build_data``) and :func:`load_teacher`.
"""

__version__ = "0.1.0"


def __getattr__(name):  # keep `import kdzoo` light: torch loads only when something is used
    if name == "load_teacher":
        from .engine.checkpoint import load_teacher

        return load_teacher
    if name == "Distiller":
        from .distiller import Distiller

        return Distiller
    raise AttributeError(f"module 'kdzoo' has no attribute {name!r}")


def __dir__():  # the lazy names too, so tab completion offers `kdzoo.Distiller`
    return sorted({*globals(), *__all__})


__all__ = ["Distiller", "load_teacher", "__version__"]
