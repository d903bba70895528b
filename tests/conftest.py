import math
import os
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kdzoo.commands import main
from kdzoo.methods import create_method
from kdzoo.models import create_model, extract

# Under pytest-xdist (`make test` runs one worker per core), each worker computes with its share of the cores.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

#: Fixtures that make a test end-to-end (a real `kdzoo` run, in-process or in subprocesses): such tests are
#: marked ``slow``, so ``make test-quick`` (``pytest -m "not slow"``) leaves them out.
END_TO_END_FIXTURES = {"cli", "tiny_teacher"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


ROOT = Path(__file__).resolve().parents[1]


def docs_page_with(text: str) -> Path:
    """The one documentation page (README.md or a Markdown page under docs/) that holds ``text``: where an example
    marked ``<!-- marker -->``, or a statement a test checks, lives now."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = [page for page in pages if text in page.read_text(encoding="utf-8")]
    assert len(found) == 1, f"{text!r} is on {len(found)} docs pages, not one: {[p.relative_to(ROOT) for p in found]}"
    return found[0]


# Small, fast settings for end-to-end runs on the synthetic dataset.
TINY = ["--dataset", "synthetic", "--dataset-opt", "num_train=96", "--dataset-opt", "num_test=64",
        "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu"]


@pytest.fixture
def cli(capsys):
    """Run ``kdzoo ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def one_paragraph_error(code: int, err: str) -> None:
    """``kdzoo`` refused its input as a usage error: exit code 2 and one line ``kdzoo: error: ...`` on stderr, no
    traceback."""
    assert code == 2
    assert err.startswith("kdzoo: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def kdzoo_subprocess(*args, env: dict[str, str] | None = None, script: Path | None = None,
                     **kwargs) -> subprocess.Popen:
    """``python -m kdzoo ARGS`` (``python SCRIPT ARGS``: a test's own launcher of kdzoo) in a subprocess, its output
    (stdout and stderr) on ``stdout``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    launcher = ["-m", "kdzoo"] if script is None else [str(script)]
    return subprocess.Popen([sys.executable, *launcher, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Wait until ``process`` (a :func:`kdzoo_subprocess`) has written ``path``; fail with its output if it ends or
    the time runs out first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.02)


@pytest.fixture
def one_thread():
    """Torch on one CPU thread in this process (pass ``ONE_THREAD`` as ``env`` to subprocesses): on a busy
    machine two spinning threads per process are several times slower, and a run compared bit for bit with a
    subprocess's must use the same thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A kdzoo run folder holding a resnet14 trained for 1 epoch on the tiny synthetic data."""
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train", "--model", "resnet14", *TINY, "--epochs", "1", "--output-dir", str(out), "--name", "t"]) == 0
    return out / "t"


def models(student: str, teacher: str, frozen_teacher: bool = False):
    """A fresh (seeded) student and an eval-mode teacher with 10 classes; with ``frozen_teacher``, the teacher's
    parameters do not require gradients (as the Distiller leaves it)."""
    torch.manual_seed(0)
    s, t = create_model(student, num_classes=10), create_model(teacher, num_classes=10).eval()
    return s, t.requires_grad_(False) if frozen_teacher else t


@cache
def frozen_model(name: str):
    """A model only used to size methods (never trained), built once per test session."""
    return create_model(name, num_classes=10)


def built(name: str, student: str, teacher: str, **options):
    """Method ``name`` sized on the session's :func:`frozen_model` student and teacher."""
    return create_method(name, frozen_model(student), frozen_model(teacher), **options)


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """A fixed standard-normal tensor of ``shape`` times ``scale`` (its own generator: the global seed is untouched)."""
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def images(n: int, seed: int = 1) -> torch.Tensor:
    """A fixed random batch of ``n`` 3x32x32 images."""
    return randn(n, 3, 32, 32, seed=seed)


def forward_pair(student, teacher, x, preact: bool = False, teacher_preact: bool | None = None):
    """Student features with gradients, teacher features without, as the engine computes them."""
    s = extract(student, x, preact=preact)
    with torch.no_grad():
        t = extract(teacher, x, preact=preact if teacher_preact is None else teacher_preact)
    return s, t


def check_gradients_and_short_batches(method, student, teacher, terms: set[str]) -> None:
    """Gradients of ``method``'s terms reach the student and the method's modules, never the teacher; batches of 3
    (the method was sized on 2 samples) and 1 (in eval mode: BatchNorm cannot train on one sample) stay finite."""
    fs, ft = forward_pair(student, teacher, images(4, seed=0))
    out = method(fs, ft, SimpleNamespace(labels=torch.zeros(4, dtype=torch.long), index=torch.arange(4)))
    assert set(out) == terms
    sum(out.values()).backward()
    stem = next(student.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    for p in method.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    fs, ft = forward_pair(student, teacher, images(3, seed=3))
    assert all(torch.isfinite(v) for v in method(fs, ft, None).values())
    student.eval()
    fs, ft = forward_pair(student, teacher, images(1, seed=1))
    assert all(torch.isfinite(v) for v in method(fs, ft, None).values())


def batch_of(n: int) -> SimpleNamespace:
    """The labels and dataset indices of an ``n``-sample batch."""
    return SimpleNamespace(labels=torch.arange(n) % 10, index=torch.arange(n))


# -- reference values, computed naively (plain Python or NumPy) -------------------------------------------
def arr(x):
    """A tensor as a float64 NumPy array (detached)."""
    return x.detach().double().numpy()


def softmax(v):
    """The softmax of a sequence of numbers, in plain Python (a list)."""
    e = [math.exp(x - max(v)) for x in v]
    return [x / sum(e) for x in e]


def kl(p, q):
    """KL(p || q) of two probability sequences, in plain Python (terms where p is 0 count 0)."""
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


def naive_kd(zs, zt, ts, tt=None):
    """KD's loss in plain Python: KL(p_t || p_s) summed over classes, averaged over the batch's rows, times ts*tt,
    with p_s the softmax of the student's logits ``zs`` at temperature ``ts`` and p_t of the teacher's ``zt`` at
    ``tt`` (``ts`` when not given)."""
    tt = ts if tt is None else tt
    rows = [kl(softmax([v / tt for v in b]), softmax([v / ts for v in a])) for a, b in zip(zs, zt, strict=True)]
    return ts * tt * sum(rows) / len(rows)


def block_mean(a, h):
    """Naive adaptive average pooling of a (..., H, H) numpy array to (h, h) when h divides H."""
    k = a.shape[-1] // h
    return a.reshape(*a.shape[:-2], h, k, h, k).mean(axis=(-3, -1))


def match(a, b):
    """Naive pool-to-match of two numpy maps (the larger pooled to the smaller's size)."""
    ha, hb = a.shape[-1], b.shape[-1]
    return (block_mean(a, hb), b) if ha > hb else (a, block_mean(b, ha)) if hb > ha else (a, b)


def two_steps(distiller, expected_terms, extras_move: bool = False):
    """Two SGD steps of a :class:`kdzoo.Distiller` (the engine's and a user's path): the terms are the expected ones,
    finite, and move the deployed student (with the method's head when it has one) and, with ``extras_move``, every
    parameter the method adds."""
    student = distiller.student
    opt = torch.optim.SGD(distiller.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    before = [p.detach().clone() for p in student.parameters()]
    extras = [p for p in distiller.method.parameters() if p.requires_grad]
    extras_before = [p.detach().clone() for p in extras]
    distiller.train()
    for step in range(2):
        batch = batch_of(4)
        strong = images(4, seed=10 + step) if distiller.reads.strong_view else None  # MLKD's second view
        terms = distiller(images(4, seed=step), batch.labels, index=batch.index, strong_images=strong)
        assert set(terms) == expected_terms
        loss = sum(terms.values())
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, student.parameters(), strict=True))
    if extras_move:
        assert all(not torch.equal(b, p) for b, p in zip(extras_before, extras, strict=True)), expected_terms
