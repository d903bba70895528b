"""A per-epoch progress bar (tqdm) showing loss, accuracy and throughput; silent when not wanted."""

from __future__ import annotations

import sys

from tqdm import tqdm


class EpochProgress:
    """Updates its numbers every ``every`` steps (reading them forces a device sync)."""

    def __init__(self, total: int, desc: str, enabled: bool = True, every: int = 20):
        self.every = every
        self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr,
                        disable=not enabled or not sys.stderr.isatty())

    def step(self, step: int) -> bool:
        """Advance by one step; True when the caller should :meth:`show` fresh numbers."""
        self.bar.update(1)
        return not self.bar.disable and (step + 1) % self.every == 0

    def show(self, **numbers: float) -> None:
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in numbers.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
