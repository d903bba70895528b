"""Runs ``kdzoo`` (the CLI's ``main``) with two test-only models registered, for tests/test_distributed.py.

Launched either as a plain process (the single-process reference) or by torchrun. ``tiny_nobn`` has
no BatchNorm, so one process with the global batch and N processes with its shards compute exactly
the same thing (BatchNorm would normalise each shard with its own statistics, as every DDP run does
without SyncBatchNorm). ``tiny_fails_on_rank1`` raises in its second training step on rank 1.
"""

import sys

import torch
import torch.distributed as dist
from torch import nn

from kdzoo.commands import main
from kdzoo.models import TAPS, Features, register_model
from kdzoo.models.layers import FeatureModel, global_pool


class TinyNoBN(FeatureModel):
    def __init__(self, num_classes: int, in_channels: int, fail_on_rank1: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.layer1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, num_classes)
        self.fail_on_rank1 = fail_on_rank1
        self.calls = 0

    def forward_taps(self, x, request=TAPS):
        if self.training and self.fail_on_rank1:
            self.calls += 1
            if self.calls == 2 and dist.is_initialized() and dist.get_rank() == 1:
                raise RuntimeError("simulated failure on rank 1")
        f0 = torch.relu(self.conv1(x))
        f1 = torch.relu(self.layer1(f0))
        pooled = global_pool(f1)
        return Features(self.fc(pooled), [f0, f1, pooled], f1)

    def get_classifier(self):
        return self.fc


def tiny_nobn(num_classes: int = 10, in_channels: int = 3, **kwargs):
    return TinyNoBN(num_classes, in_channels)


def tiny_fails_on_rank1(num_classes: int = 10, in_channels: int = 3, **kwargs):
    return TinyNoBN(num_classes, in_channels, fail_on_rank1=True)


if __name__ == "__main__":
    # Registered in the worker process only: test_distributed.py imports TinyNoBN, and the test process's model
    # registry must stay the zoo's (test_models.py runs the model contract over every registered model).
    register_model("tiny_nobn", family="test", lr=0.05)(tiny_nobn)
    register_model("tiny_fails_on_rank1", family="test", lr=0.05)(tiny_fails_on_rank1)
    sys.exit(main(sys.argv[1:]))
