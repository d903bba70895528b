"""Runs ``kdzoo`` (the CLI's ``main``) whose write of a teacher-cache epoch file hangs halfway, for
tests/test_teacher_cache.py to kill it there: ``python hanging_cache_write.py MARKER EPOCH KDZOO_ARGS...`` writes part
of epoch EPOCH's file, creates MARKER, then sleeps."""

import sys
import time
from pathlib import Path

import torch

from kdzoo.commands import main
from kdzoo.engine.teacher_cache import FORMAT

marker, epoch = Path(sys.argv[1]), int(sys.argv[2])
real_save = torch.save


def hanging_save(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("format") == FORMAT and obj.get("epoch") == epoch:
        f.write(b"PK\x03\x04" * 1024)  # the start of a file, on disk
        f.flush()
        marker.touch()
        time.sleep(600)
    return real_save(obj, f, *args, **kwargs)


torch.save = hanging_save
sys.exit(main(sys.argv[3:]))
