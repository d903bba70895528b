"""Every distillation loss as a plain function on tensors.

Compose them in your own training loop; kdzoo's method modules call the same functions.

>>> from kdzoo.losses import kd_loss
>>> loss = kd_loss(student_logits, teacher_logits, t_student=4.0, t_teacher=4.0)

Each loss module lists its public functions in ``__all__``; they are re-exported here.
"""

import importlib
import pkgutil

__all__: list[str] = []
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "common":
        _module = importlib.import_module(f"{__name__}.{_info.name}")
        for _name in _module.__all__:
            globals()[_name] = getattr(_module, _name)
            __all__.append(_name)
__all__.sort()
