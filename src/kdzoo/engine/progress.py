"""A per-epoch progress bar (tqdm) showing loss, accuracy and throughput; silent when not wanted."""

from __future__ import annotations

import sys
from typing import Callable

from tqdm import tqdm


class EpochProgress:
    """Updates its numbers every ``every`` steps (reading them forces a device sync)."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: int = 20):
        self.every = every
        self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr,
                        disable=not enabled or not sys.stderr.isatty())

    def update(self, step: int, numbers: Callable[[], dict[str, float]]) -> None:
        self.bar.update(1)
        if not self.bar.disable and (step + 1) % self.every == 0:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in numbers().items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
