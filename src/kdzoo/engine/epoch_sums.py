"""An epoch's running sums, kept on the device: each step adds to them without a host synchronisation, and the
host reads them only when it looks (every logging interval, and once at the epoch's end; see
:data:`~kdzoo.engine.progress.LOG_EVERY`)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import distributed


class EpochSums:
    """Named sums over an epoch's samples (float32, on the device) and the samples seen (on the host)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, Tensor] = {}
        self.seen = 0

    def add(self, n: int, means: dict[str, Tensor], counts: dict[str, Tensor] | None = None) -> None:
        """One step over ``n`` samples: ``means`` are batch means (added as mean * n, e.g. loss terms), ``counts``
        batch totals (e.g. correct predictions)."""
        for name, value in means.items():
            self._add(name, value.detach() * n)
        for name, value in (counts or {}).items():
            self._add(name, value.detach())
        self.seen += n

    def _add(self, name: str, value: Tensor) -> None:
        value = value.float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value

    def totals(self, all_ranks: bool = False) -> tuple[dict[str, float], int]:
        """The sums and the samples seen, on the host (one synchronisation); summed over every process of a
        distributed run with ``all_ranks`` (one all-reduce)."""
        if not all_ranks:
            values = torch.stack(list(self.sums.values())).tolist() if self.sums else []
            return dict(zip(self.sums, values, strict=True)), self.seen
        seen = torch.tensor(float(self.seen), device=self.device)
        *values, total_seen = distributed.all_reduce_sum(torch.stack([*self.sums.values(), seen])).tolist()
        return dict(zip(self.sums, values, strict=True)), int(total_seen)
