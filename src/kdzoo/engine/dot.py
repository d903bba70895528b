"""DOT: Zhao, Song, Qiu, "DOT: A Distillation-Oriented Trainer", ICCV 2023 (mdistiller's ``engine/dot.py``).

SGD with two momentum buffers per parameter: the gradient of the task loss (cross-entropy) g_ce and
the gradient of the distillation loss g_kd are accumulated separately,

    b_ce <- (mu - delta) * b_ce + g_ce + wd * p        b_kd <- (mu + delta) * b_kd + g_kd
    p    <- p - lr * (b_ce + b_kd)

so the distillation gradients keep more of their history than the task's (mu 0.9, delta 0.075 on
CIFAR-100 and Tiny-ImageNet, 0.09 on ImageNet). A parameter that receives only one of the two
gradients (e.g. a method's connector) uses plain momentum mu for it and takes the weight decay
there. Each buffer starts as its first gradient, as in torch's SGD; as in mdistiller's ``dot()``, a
parameter with only the distillation gradient starts its buffer from the raw gradient, so its weight
decay begins at its second step (a task-only parameter's, like SGD's, at its first). Usage per step::

    optimizer.zero_grad(set_to_none=True)
    distill_loss.backward(retain_graph=True)
    optimizer.store_distill_grads()
    task_loss.backward()
    optimizer.step()
"""

from __future__ import annotations

import torch
from torch import Tensor


class DOT(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, delta: float = 0.075, weight_decay: float = 5e-4):
        if not 0 <= delta < momentum:
            raise ValueError(f"DOT needs 0 <= delta < momentum, got delta {delta} and momentum {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, delta=delta, weight_decay=weight_decay))

    @torch.no_grad()
    def store_distill_grads(self) -> None:
        """Set the current gradients aside as the distillation gradients (and clear ``.grad``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.state[p]["distill_grad"] = p.grad
                    p.grad = None

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """Update with the task gradients now in ``.grad`` and the stored distillation gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            mu, delta, wd, lr = group["momentum"], group["delta"], group["weight_decay"], group["lr"]
            for p in group["params"]:
                state = self.state[p]
                task, distill = p.grad, state.pop("distill_grad", None)
                if task is None and distill is None:
                    continue
                both = task is not None and distill is not None
                if task is not None:
                    step = _momentum(state, "momentum_buffer", task.add(p, alpha=wd), mu - delta if both else mu)
                    p.add_(step, alpha=-lr)
                if distill is not None:
                    decays = not both and "distill_momentum_buffer" in state
                    grad = distill.add(p, alpha=wd) if decays else distill
                    p.add_(_momentum(state, "distill_momentum_buffer", grad, mu + delta if both else mu), alpha=-lr)
        return loss


def _momentum(state: dict, key: str, grad: Tensor, momentum: float) -> Tensor:
    """``state[key] <- momentum * state[key] + grad`` (the gradient itself the first time)."""
    buf = state.get(key)
    if buf is None:
        state[key] = buf = grad.clone()
    else:
        buf.mul_(momentum).add_(grad)
    return buf
