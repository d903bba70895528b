"""Every distillation loss as a plain function on tensors.

Compose them in your own training loop; kdzoo's method modules call the same functions.

>>> from kdzoo.losses import kd_loss
>>> loss = kd_loss(student_logits, teacher_logits, t_student=4.0, t_teacher=4.0)
"""

from .kd import kd_loss

__all__ = ["kd_loss"]
