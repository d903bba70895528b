"""The exact teacher-output cache (``--teacher-cache DIR``): a frozen teacher's logits for every training batch,
computed once and read back by every later run that would compute exactly the same ones.

- **Key.** Everything that determines the outputs (:func:`key_fields`): the teacher's weights (SHA-256 of its state
  dict), architecture and options; the dataset, its options, root, subsets and data seed; the files the training
  images are read from (``DataBundle.fingerprint()``: each one's path, size, modification and change times, which
  every dataset read from files declares; ``stat`` only, never the contents, whose hash would read the whole data
  set at every run); the seed, batch size and views (MLKD's strong view); rank and world size; device (and a CPU's
  thread count), precision, the teacher's memory format, compile and determinism; the kdzoo and torch versions.
  ``key`` = SHA-256 of their canonical JSON; the cache of a key is the folder ``DIR/<key>/`` (``key.json`` lists
  the fields), so any difference is a miss, never a wrong hit. The epoch names the file: ``epoch_<e>.pt``.
- **Files.** One per epoch, written whole at the end of its training loop with
  :func:`~kdzoo.engine.checkpoint.save_whole` (a killed run leaves no partial epoch; a resumed one reuses the
  finished epochs): ``{format, version, key, epoch, steps, views, dtype, teacher_time_s, logits}``, ``logits`` the
  list of each step's teacher logits (``[weak; strong]`` rows with two views) in the dtype the teacher produced,
  on the CPU. Read with ``weights_only=True``, as a regular file only (:func:`load_regular`: a symbolic link is
  never followed); a file that does not load or whose header does not fit (truncated, another key, epoch or step
  count) is a miss: the epoch is recomputed and the file written again. The run header counts as held only the
  files whose header fits (read memory-mapped, without the logits). A write that fails (disk full, a read-only
  folder) leaves no file; the run warns once and goes on without writing to the cache (its results are those of a
  run without one), and ``summary.json`` records the error. Files get the umask's mode, and the temporary files of
  killed writers are removed when a run opens the folder (:mod:`kdzoo.atomic_text`: a live writer holds its lock).
- **Verified.** On an epoch read from the cache, ``--teacher-cache-verify batch`` (the default) recomputes one
  batch, drawn by a generator of its own seeded from the key and the epoch (never the global RNG), ``all`` every
  batch, ``none`` none; a difference stops the run (:class:`TeacherCacheError`, naming the key, the folder and the
  three things that can differ: the teacher's inputs, the numerics, the file).
  Compared bit for bit where the numerics are deterministic (CPU, or ``--deterministic``), else within
  :data:`TOLERANCE`.
- **Teacher time saved**: each epoch file records the seconds its teacher forwards took when it was computed
  (``perf_counter`` around each teacher call, the CUDA stream synchronised around it); a batch read from the cache
  and not recomputed saves its epoch's mean per batch.

Only for methods whose teacher reads are its logits alone (:func:`cache_refusal`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import __version__, distributed
from ..atomic_text import remove_dead_temporaries, write_text_atomic
from ..config import Role, RunConfig, fields_with
from ..data.paths import data_root
from ..errors import ConfigError, KdzooError
from ..models import LOGITS, Features, unwrap
from ..resolved import ResolvedRun, resolve_run
from ..text_table import plural
from .checkpoint import save_whole

FORMAT = "kdzoo-teacher-cache"
VERSION = 1
#: (rtol, atol) of the comparison on CUDA without ``--deterministic``: ``|cached - recomputed| <= atol + rtol *
#: |recomputed|`` elementwise, in float32 (bf16 logits carry about 3 significant digits).
TOLERANCE = (1e-2, 1e-2)
#: How an epoch file is opened to be read: never through a symbolic link, never blocking on a FIFO.
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class TeacherCacheError(KdzooError):
    """Cached teacher outputs differ from the teacher's recomputed ones."""


def cache_refusal(run: ResolvedRun) -> str | None:
    """Why a teacher-output cache cannot serve the (resolved) run, None when it can: the run has no teacher, or its
    method reads more of the teacher than its logits (features, or the teacher in batch statistics)."""
    if not run.cfg.distilling:
        return "the run has no teacher"
    method, needs = run.method, run.needs
    if needs.teacher == LOGITS and not needs.teacher_batch_stats:
        return None
    if needs.teacher_batch_stats:
        return (f"{method} runs the teacher in batch statistics, so its outputs depend on each batch's BatchNorm "
                f"statistics")
    parts = [name for name, on in (("feature maps", needs.teacher.taps), ("pre-activation maps", needs.teacher.preact),
                                   ("exits", needs.teacher.exits)) if on]
    return f"{method} reads the teacher's {' and '.join(parts) or 'features'}, not only its logits"


def check_cache_allowed(run: ResolvedRun) -> None:
    """Refuse ``--teacher-cache`` for a (resolved) run it cannot serve (:func:`cache_refusal`), with the reason."""
    reason = None if run.cfg.teacher_cache is None else cache_refusal(run)
    if reason is not None:
        raise ConfigError(f"--teacher-cache keeps a teacher's logits for logit methods (kd, dkd, mlkd, ...), and "
                          f"{reason}: drop --teacher-cache.")


def state_digest(model: nn.Module) -> str:
    """SHA-256 of ``model``'s state dict: every entry's name, dtype, shape and bytes (in the standard layout, so
    a channels-last or compiled copy digests the same)."""
    digest = hashlib.sha256()
    for name, value in sorted(unwrap(model).state_dict().items()):
        value = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def key_fields(cfg: RunConfig, teacher: nn.Module, device: torch.device, amp: torch.dtype | None,
               teacher_channels_last: bool, compile_mode: str | None, views: int, num_train: int,
               train_files: str | None = None) -> dict[str, Any]:
    """Everything that determines the teacher's outputs for the batches of a run: :func:`key_options` as given, and
    what the others resolve to (the teacher's weights, the data folder, the device and speed plan: arguments here);
    ``train_files``: the digest of the files its training images are read from (``DataBundle.fingerprint()``, None
    for data made in memory)."""
    given = {name: value for name, value in key_options(cfg).items() if name not in RESOLVED_IN_KEY}
    return {
        "format": FORMAT, "version": VERSION, "kdzoo": __version__, "torch": torch.__version__,
        "teacher_sha256": state_digest(teacher),
        "teacher_arch": getattr(teacher, "kdzoo_arch", None),
        "teacher_class": f"{type(unwrap(teacher)).__module__}.{type(unwrap(teacher)).__qualname__}",
        "data_root": str(data_root(cfg.data_root).resolve()), "num_train": num_train, "train_files": train_files,
        **given, "views": views,
        "rank": distributed.rank(), "world_size": distributed.world_size(),
        "device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "amp": str(amp) if amp is not None else None, "teacher_channels_last": teacher_channels_last,
        "compile": compile_mode, "deterministic": torch.are_deterministic_algorithms_enabled(),  # as the run set it
        "cpu_threads": torch.get_num_threads() if device.type == "cpu" else None,  # may change a CPU's sums' order
    }


#: The run options that decide a run's key beside its method's views: :func:`key_fields` holds them, or what they
#: resolve to (the teacher's weights, the device and speed plan): :attr:`Role.CACHE_KEY <kdzoo.config.Role.CACHE_KEY>`.
KEY_OPTIONS = fields_with(Role.CACHE_KEY)
#: The options of :data:`KEY_OPTIONS` that :func:`key_fields` holds as what they resolve to, not as given.
RESOLVED_IN_KEY = frozenset({"teacher", "teacher_arch", "data_root", "device", "amp", "channels_last", "compile",
                             "compile_mode", "deterministic"})


def key_options(cfg: RunConfig) -> dict[str, Any]:
    """The values of :data:`KEY_OPTIONS` in ``cfg``: what both :func:`key_fields` and :func:`shared_key` key on."""
    return {name: getattr(cfg, name) for name in sorted(KEY_OPTIONS)}


def shared_key(cfg: RunConfig) -> str:
    """What ``cfg`` tells of its run's cache without loading the teacher: its folder, :func:`key_options` and the
    views of its resolved run. Runs with the same one share a key when their teacher files hold the same weights."""
    values = {**key_options(cfg), "views": resolve_run(cfg).views}
    values["folder"] = str(Path(cfg.teacher_cache).expanduser().resolve()) if cfg.teacher_cache else None
    return json.dumps(values, sort_keys=True, default=str)


def cache_key(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields``."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_bytes_per_epoch(images: int, classes: int, dtype: torch.dtype, views: int = 1) -> int:
    """Bytes of the teacher logits in one epoch's file: ``classes`` logits per image and view, in ``dtype`` (the
    teacher's: float32 on a CPU, bf16 or fp16 under autocast); ``torch.save`` adds under 0.5 KiB per batch and
    2 KiB per file."""
    return images * views * classes * dtype.itemsize


def human_size(size: int) -> str:
    """``size`` bytes as B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Unusable(Exception):
    """An epoch file that cannot be trusted (unreadable, not a regular file, or its header does not fit): recompute
    it."""


def load_regular(path: Path, peek: bool = False) -> Any:
    """``torch.load`` of ``path`` (``weights_only``) when it is a regular file: a symbolic link (which may point
    anywhere, another key's file too), a FIFO or a device is :class:`Unusable`, as is a file that does not load.
    ``peek``: memory-mapped, so only the header and the tensors' shapes are read, not their values."""
    if path.is_symlink():
        raise Unusable("it is a symbolic link; the cache reads only the regular files it writes")
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        raise Unusable(f"unreadable: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unusable("it is not a regular file")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                return torch.load(path if peek else f, map_location="cpu", weights_only=True, mmap=peek)
        except Exception as exc:  # truncated or not a torch file: torch.load fails in many ways
            raise Unusable(f"unreadable: {type(exc).__name__}") from None


class TeacherCache:
    """One run's view of its key's cache folder. Per main epoch: :meth:`start_epoch`, :meth:`outputs` for each step
    in order, :meth:`finish_epoch`."""

    def __init__(self, root: str | Path, fields: dict[str, Any], verify: str, exact: bool, device: torch.device,
                 log: Callable[[str], None] = print):
        self.fields, self.key = fields, cache_key(fields)
        self.named = Path(root).expanduser() / self.key  # as the run names it (summary.json: no absolute path)
        self.folder = self.named.resolve()
        self.verify, self.exact, self.device, self.log = verify, exact, device, log
        self.hits = self.misses = 0
        self.saved_s = 0.0
        self.write_error: str | None = None  # set by a failed write: the run then writes no more
        key_file = self.folder / "key.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not key_file.is_file():
                write_text_atomic(key_file, json.dumps(fields, indent=2, sort_keys=True, default=str))
        except OSError as exc:  # a read-only folder or a full disk: the run reads what is there, writes nothing
            self.write_failed(key_file if self.folder.is_dir() else self.folder, exc)
        removed = remove_dead_temporaries(self.folder.glob("*.tmp"))  # killed writers' (live ones hold a lock)
        if removed:
            self.log(f"note: removed {len(removed)} temporary file(s) of killed writers from {self.folder}, e.g. "
                     f"{removed[0].name}.")
        self.epoch = 0
        self.cached: list[Tensor] | None = None
        self.fresh: list[Tensor] = []
        self.check: set[int] = set()
        self.step = 0
        self.steps = 0
        self.time_per_step = 0.0
        self.teacher_time = 0.0

    def epoch_path(self, epoch: int) -> Path:
        return self.folder / f"epoch_{epoch}.pt"

    def usable(self, epoch: int, steps: int) -> bool:
        """Whether ``epoch``'s file is there and its header fits (read without its logits' values)."""
        try:
            self.read_epoch(self.epoch_path(epoch), epoch, steps, peek=True)
        except Unusable:
            return False
        return True

    def size_on_disk(self) -> int:
        """Bytes of the folder's regular files (a symbolic link's target is not the cache's)."""
        if not self.folder.is_dir():
            return 0
        sizes = (p.lstat() for p in self.folder.iterdir())
        return sum(st.st_size for st in sizes if stat.S_ISREG(st.st_mode))

    def describe(self, epochs: int, steps: int) -> str:
        """The run header's line: the folder, how many of the run's epochs it holds in files whose header fits
        ``steps`` steps (hits) or not (misses: missing, unusable, symbolic links), its size, the verification."""
        held = sum(self.usable(epoch, steps) for epoch in range(1, epochs + 1))
        return (f"teacher cache: {self.folder} holds {held} of the {plural(epochs, 'epoch')} (hits; {epochs - held} "
                f"to compute and write: misses), {human_size(self.size_on_disk())} on disk; verify "
                f"{self.verify}{'' if self.verify == 'none' else ', bitwise' if self.exact else ' (tolerance)'}")

    # -- one epoch -------------------------------------------------------------------------------------------------
    def start_epoch(self, epoch: int, steps: int) -> None:
        """Read ``epoch``'s file when it holds ``steps`` usable steps; else the epoch is computed and written."""
        self.epoch, self.steps, self.step = epoch, steps, 0
        self.fresh, self.teacher_time, self.check = [], 0.0, set()
        self.cached = None
        path = self.epoch_path(epoch)
        if not os.path.lexists(path):
            return
        try:
            self.cached, self.time_per_step = self.read_epoch(path, epoch, steps)
        except Unusable as exc:
            self.log(f"note: teacher cache {path} cannot be used ({exc}); epoch {epoch}'s teacher outputs are "
                     f"recomputed and the file written again.")
            return
        if self.verify == "all":
            self.check = set(range(steps))
        elif self.verify == "batch":
            generator = torch.Generator().manual_seed((int(self.key[:15], 16) + epoch) % 2**63)
            self.check = {int(torch.randint(steps, (1,), generator=generator))}

    def read_epoch(self, path: Path, epoch: int, steps: int, peek: bool = False) -> tuple[list[Tensor], float]:
        """The logits of each step in ``path`` and the teacher seconds per step it recorded; :class:`Unusable`
        when it is not a regular file, does not load or does not fit (``peek``: :func:`load_regular`'s)."""
        data = load_regular(path, peek)
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise Unusable("not a kdzoo teacher-cache file of this version")
        expected = {"key": self.key, "epoch": epoch, "steps": steps, "views": self.fields["views"]}
        for name, value in expected.items():
            if data.get(name) != value:
                raise Unusable(f"its {name} is {data.get(name)!r}, not {value!r}")
        logits = data.get("logits")
        if (not isinstance(logits, list) or len(logits) != steps
                or not all(isinstance(t, Tensor) and t.dim() == 2 and str(t.dtype) == data.get("dtype")
                           for t in logits)):
            raise Unusable(f"it does not hold {steps} logit tensors of its dtype {data.get('dtype')}")
        teacher_time = data.get("teacher_time_s")
        return logits, float(teacher_time) / steps if isinstance(teacher_time, (int, float)) else 0.0

    def outputs(self, compute: Callable[[], Features]) -> Features:
        """The teacher's outputs for the epoch's next step: read from the cache (recomputed and compared when this
        step is verified), or computed by ``compute`` (and timed) and kept for the epoch's file."""
        i = self.step
        self.step += 1
        if self.cached is not None:
            logits = self.cached[i]
            if i in self.check:
                self.compare(logits, self.timed(compute).logits, i)
            else:
                self.saved_s += self.time_per_step
            self.hits += 1
            return Features(logits.to(self.device), [])
        out = self.timed(compute)
        if self.write_error is None:
            self.fresh.append(out.logits.detach().to("cpu", copy=True))
        self.misses += 1
        return out

    def timed(self, compute: Callable[[], Features]) -> Features:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        out = compute()
        sync()
        self.teacher_time += time.perf_counter() - start
        return out

    def compare(self, cached: Tensor, fresh: Tensor, step: int) -> None:
        """Stop the run when the cached logits of ``step`` differ from the recomputed ones."""
        fresh = fresh.detach().to("cpu")
        if cached.dtype != fresh.dtype or cached.shape != fresh.shape:
            detail = f"cached {cached.dtype} {tuple(cached.shape)}, recomputed {fresh.dtype} {tuple(fresh.shape)}"
        elif self.exact and torch.equal(cached, fresh):
            return
        elif not self.exact and torch.allclose(cached.float(), fresh.float(), rtol=TOLERANCE[0], atol=TOLERANCE[1]):
            return
        else:
            diff = (cached.float() - fresh.float()).abs().max().item()
            rule = "bit for bit" if self.exact else f"within rtol {TOLERANCE[0]:g}, atol {TOLERANCE[1]:g}"
            detail = f"compared {rule}: largest difference {diff:.3g}"
        raise TeacherCacheError(
            f"The teacher cache {self.folder} (key {self.key}) does not match this run: the cached teacher logits of "
            f"epoch {self.epoch}, batch {step + 1} differ from the ones the teacher gives now ({detail}). One of three "
            f"things differs from when {self.epoch_path(self.epoch)} was written: the teacher's inputs (a data file "
            f"changed in a way its size and times, which the key reads, do not show), the numerics (another GPU "
            f"model, driver or CUDA/cuDNN/BLAS build: the key holds the device's name and torch's version only), or "
            f"the file itself (altered or replaced). Delete {self.folder} (it is recomputed) and run again "
            f"(--resume RUN_DIR continues this run).")

    def finish_epoch(self) -> None:
        """Write the epoch's file when it was computed here, every step of it; after a failed write (disk full)
        the run writes no more."""
        path = self.epoch_path(self.epoch)
        if self.cached is None and self.write_error is None and len(self.fresh) == self.steps:
            dtypes = {str(t.dtype) for t in self.fresh}
            try:
                save_whole({"format": FORMAT, "version": VERSION, "key": self.key, "epoch": self.epoch,
                            "steps": self.steps, "views": self.fields["views"],
                            "dtype": dtypes.pop() if dtypes else None, "teacher_time_s": self.teacher_time,
                            "logits": self.fresh}, path)
            except OSError as exc:
                self.write_failed(path, exc)
        self.fresh, self.cached = [], None

    def write_failed(self, path: Path, exc: OSError) -> None:
        """Stop writing to the cache after ``path`` could not be written, and say so once."""
        self.write_error = f"{path}: {exc.strerror or exc}"
        fix = ("Free some space on that disk (or give --teacher-cache a folder on a disk with room)"
               if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) else
               "Make that folder writable for this user (or give --teacher-cache a folder it can write)")
        self.log(f"warning: could not write the teacher cache file {path} ({exc.strerror or exc}): this run writes "
                 f"nothing more to the teacher cache {self.folder} and goes on, its results the same as without a "
                 f"cache. {fix} for later runs to fill and use it.")

    # -- the run's record -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "saved_s": self.saved_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hits, self.misses, self.saved_s = int(state["hits"]), int(state["misses"]), float(state["saved_s"])

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s ``teacher_cache``: the folder (as the run names it), the batches read (hits) and
        computed (misses), the teacher seconds the hits saved (as measured when their epochs were computed), the size
        on disk, and the write that failed (None when none did)."""
        return {"folder": self.named.as_posix(), "key": self.key, "hits": self.hits, "misses": self.misses,
                "teacher_time_saved_s": round(self.saved_s, 3), "size_bytes": self.size_on_disk(),
                "write_error": self.write_error}

    def report(self) -> str:
        """The line logged at the end of a run."""
        return (f"teacher cache: {self.hits} batches read (hits), {self.misses} computed (misses), "
                f"{self.saved_s:.1f} s of teacher forwards saved, {human_size(self.size_on_disk())} in "
                f"{self.folder}")
