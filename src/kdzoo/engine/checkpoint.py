"""Checkpoints: kdzoo's own format, RepDistiller/mdistiller teacher files, and loading with checks.

kdzoo files are ``torch.save`` dicts with ``format: "kdzoo"``, the architecture, the student's
state dict under ``"model"`` (plain keys, so RepDistiller code can read it too), and, in the
per-epoch resume file, optimiser, scheduler, RNG and method state. Everything is loaded with
``torch.load(weights_only=True)``: a checkpoint can hold tensors and plain data, never code.
Files are written atomically (temporary file + rename), so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic_text import write_atomic
from ..errors import CheckpointError, UnknownNameError
from ..models import attach_exits, attach_head, create_model, list_models, load_checkpoint_entries
from ..teachers import TeacherFile, is_pretrained, name_of, resolve
from ..teachers.downloads import sha256_of
from .checkpoint_errors import unreadable_checkpoint
from .interrupts import uninterrupted

FORMAT = "kdzoo"
LAST = "checkpoint_last.pt"   # every epoch: everything needed to resume
BEST = "checkpoint_best.pt"   # best test top-1 so far: model only


def save_whole(obj: Any, path: Path) -> None:
    """``torch.save`` into ``path`` written whole (:func:`~kdzoo.atomic_text.write_atomic`: a temporary file in the
    same folder, created with the umask's mode, renamed over ``path``); Ctrl-C and SIGTERM wait until it is done. A
    failed write leaves ``path`` as it was, removes the temporary file and raises its error."""
    with uninterrupted():
        write_atomic(path, lambda f: torch.save(obj, f))


def save_atomic(obj: Any, path: Path) -> None:
    """:func:`save_whole`; a failed write (disk full, read-only folder) raises a :class:`CheckpointError` that
    says what to do."""
    try:
        save_whole(obj, path)
    except OSError as exc:
        raise CheckpointError(
            f"Could not write {path} ({exc.strerror or exc}): is the disk full or the folder read-only? The previous "
            f"{Path(path).name}, if any, is unchanged. Free some space (or fix the permissions); a kdzoo run then "
            f"continues from its last finished epoch with --resume {Path(path).parent}.") from None


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file safely; any failure becomes a :class:`CheckpointError` that explains it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {str(path)!r} does not exist (or is not a file). Check the path; a kdzoo "
                              f"run folder holds {LAST} and {BEST}.")
    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol just before it refuses the file
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a file that is not a checkpoint
        raise unreadable_checkpoint(path, exc, f"; in a kdzoo run folder {BEST} may still be intact") from None
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model": data}  # a bare state dict
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict) or not all(
            isinstance(v, torch.Tensor) for v in data["model"].values()):
        raise CheckpointError(f"{path} is a PyTorch file but not a model checkpoint: expected a dict with the weights "
                              f"under 'model' (kdzoo, RepDistiller, mdistiller) or a bare state dict.")
    return data


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) key prefixes."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str, arch: str) -> None:
    """Strict ``load_state_dict`` with an error that lists missing, unexpected and mis-shaped keys.

    ``num_batches_tracked`` buffers may be absent (files written by PyTorch < 0.4.1)."""
    state_dict = strip_prefixes(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state_dict.items()
              if k in own and v.shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        raise CheckpointError(
            f"The weights in {source} do not fit architecture {arch!r}: {'; '.join(parts)}. "
            f"Most likely the architecture or the number of classes/input channels is wrong: pass the "
            f"right one with --teacher-arch (distill) or --arch (eval); `kdzoo list models` shows the names."
        )
    model.load_state_dict(state_dict, strict=False)


def load_entries(model: nn.Module, data: dict[str, Any], source: str, arch: str) -> None:
    """Load a network's checkpoint entries (:func:`kdzoo.models.checkpoint_entries`) back into it, with the
    checked loader (clear errors on missing, unexpected or mis-shaped keys)."""
    def load(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
        load_weights(module, strip_prefixes(state), source, arch)

    load_checkpoint_entries(model, data, load)


def arch_from_folder(path: Path) -> str | None:
    """RepDistiller's rule: the architecture is the first token of the parent folder name
    (``resnet32x4_vanilla``; ``wrn_40_2_vanilla`` keeps three tokens), if that names a model."""
    tokens = path.parent.name.split("_")
    guess = "_".join(tokens[:3]) if tokens[0] == "wrn" else tokens[0]
    return guess if guess in list_models() else None


def _infer_io(state_dict: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(num_classes, in_channels) from the last 2-D weight (the classifier) and the first 4-D one."""
    weights = [v for k, v in state_dict.items() if k.endswith("weight")]
    classifier = [v for v in weights if v.dim() == 2]
    convs = [v for v in weights if v.dim() == 4]
    if not classifier or not convs:
        raise CheckpointError("Cannot infer the number of classes and input channels from this state dict; pass "
                              "num_classes explicitly.")
    return classifier[-1].shape[0], convs[0].shape[1]


def check_teacher_file(path: Path, name: str) -> None:
    """A published teacher's file loads weights-only into its zoo architecture ``name`` (keys and shapes checked)."""
    load_model(path, arch=name)


def file_record(path: str | Path) -> dict[str, str]:
    """What a run records of a teacher given as a file or run folder: the file loaded and its SHA-256 (a resumed run
    must load the same bytes)."""
    path = resolve_checkpoint_path(path)
    return {"file": str(path), "sha256": sha256_of(path)}


def pretrained_file(spec: str) -> TeacherFile:
    """``pretrained:NAME``: the published teacher's downloaded file (fetched and checked first when not downloaded
    yet)."""
    return resolve(name_of(spec), check=check_teacher_file)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """``pretrained:NAME`` means the published teacher's downloaded file, a kdzoo run folder its last checkpoint;
    anything else must be a file."""
    if is_pretrained(str(path)):
        return pretrained_file(str(path)).path
    path = Path(path)
    if path.is_dir():
        if (path / LAST).is_file():
            return path / LAST
        if (path / BEST).is_file():
            return path / BEST
        raise CheckpointError(f"{path} is a folder without a kdzoo checkpoint ({LAST} or {BEST}). "
                              f"{checkpoints_in_folder_hint(path)}")
    return path


#: How many existing files a hint names at most.
HINTED = 3


def checkpoints_in_folder_hint(folder: Path) -> str:
    """What to pass instead of a ``folder`` without a kdzoo checkpoint, naming only files that exist: the run
    folders below it that hold one, else the checkpoint files in it (a RepDistiller ``ckpt_epoch_240.pth``), else
    what a run folder holds."""
    runs = sorted({f.parent for name in (LAST, BEST) for f in folder.glob(f"*/{name}") if f.is_file()})
    if runs:
        return f"The run folders below it hold one: pass one of them, e.g. {', '.join(map(str, runs[:HINTED]))}."
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in {".pt", ".pth", ".tar", ".ckpt"})
    if files:
        return f"Pass the checkpoint file itself: {', '.join(map(str, files[:HINTED]))}."
    return (f"Nor does any run folder below it. Pass a kdzoo run folder (it holds {LAST} once its first epoch is "
            f"done) or a checkpoint file (e.g. RepDistiller's ckpt_epoch_240.pth).")


def load_model(path: str | Path, arch: str | None = None, num_classes: int | None = None,
               in_channels: int | None = None, device: str | torch.device = "cpu",
               options: dict[str, Any] | None = None,
               feature_layers: list[str] | None = None) -> tuple[nn.Module, dict]:
    """Build the right architecture and load the weights of a kdzoo, RepDistiller, mdistiller, timm or
    torchvision file (a state dict, bare or under ``'model'``).

    Returns ``(model, checkpoint_dict)``. The architecture comes from ``arch``, else the file
    (kdzoo), else the folder name (RepDistiller's ``<arch>_vanilla`` rule). ``options`` go to the
    architecture's builder (e.g. a timm ViT's ``img_size``) and ``feature_layers`` name its stages; kdzoo files
    remember both."""
    path = resolve_checkpoint_path(path)
    data = read_checkpoint(path)
    state_dict = strip_prefixes(data["model"])
    arch = arch or data.get("arch") or arch_from_folder(path)
    if arch is None:
        raise CheckpointError(
            f"Cannot tell the architecture of {path}: the file does not record it and the folder name "
            f"{path.parent.name!r} does not start with a model name (RepDistiller keeps teachers in "
            f"'<arch>_vanilla/'). Pass it explicitly: --teacher-arch NAME with distill, --arch NAME with eval."
        )
    inferred_classes, inferred_channels = _infer_io(state_dict)
    try:
        model = create_model(arch, num_classes=num_classes or data.get("num_classes") or inferred_classes,
                             in_channels=in_channels or data.get("in_channels") or inferred_channels,
                             feature_layers=feature_layers or data.get("feature_layers"),
                             **(options if options is not None else data.get("arch_options") or {}))
    except UnknownNameError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    load_entries(model, {**data, "model": state_dict}, str(path), arch)
    if data.get("head"):
        model = attach_head(model, data["head"])
    if data.get("exits"):
        model = attach_exits(model, data["exits"])
    return model.to(device), data


def load_teacher(path: str | Path, arch: str | None = None, num_classes: int | None = None,
                 device: str | torch.device = "cpu", options: dict[str, Any] | None = None,
                 feature_layers: list[str] | None = None) -> nn.Module:
    """A frozen teacher in eval mode from a kdzoo run folder/checkpoint, a RepDistiller/mdistiller
    file (``<arch>_vanilla/ckpt_epoch_240.pth``, weights under ``'model'``), a published teacher
    (``pretrained:NAME``) or a timm/torchvision state dict (with ``arch="timm/NAME"`` or ``"torchvision/NAME"``)."""
    return read_teacher(path, arch=arch, num_classes=num_classes, device=device, options=options,
                        feature_layers=feature_layers)[0]


def read_teacher(path: str | Path, arch: str | None = None, num_classes: int | None = None,
                 device: str | torch.device = "cpu", options: dict[str, Any] | None = None,
                 feature_layers: list[str] | None = None) -> tuple[nn.Module, dict]:
    """:func:`load_teacher`, and the checkpoint dict it came from (what it records: a kdzoo run's config)."""
    # Building the architecture draws its (then overwritten) initial weights from the global RNG: under a fork, so
    # that a distillation run creates its student from the same random numbers as the vanilla run of its seed
    # (`kdzoo train`, no teacher), which `kdzoo report`'s paired gains rely on.
    with torch.random.fork_rng(devices=[]):
        model, data = load_model(path, arch=arch, num_classes=num_classes, device=device, options=options or None,
                                 feature_layers=feature_layers)
    model.eval()
    model.requires_grad_(False)
    return model, data
