"""A per-epoch progress bar (tqdm) showing loss, accuracy and throughput; silent when not wanted."""

from __future__ import annotations

import sys

from tqdm import tqdm

#: Steps between two looks of the host at the device's numbers (progress bar, non-finite-loss check): reading
#: a device value waits for the device, so the loop does it once per interval, not once per step.
LOG_EVERY = 20


class EpochProgress:
    """A bar of ``total`` steps; the caller :meth:`show` s fresh numbers every :data:`LOG_EVERY` steps."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr,
                        disable=not enabled or not sys.stderr.isatty())

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def step(self) -> None:
        self.bar.update(1)

    def show(self, **numbers: float) -> None:
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in numbers.items()}, refresh=False)

    def close(self) -> None:
        self.bar.close()
