"""What ``kdzoo temperature`` prints and plots: what temperature does, for given logits or a real teacher (and
student) on a test image. The maths is in :mod:`kdzoo.temperature`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import ConfigError
from ..plots import plot_distributions, plot_heatmap, plot_lines
from ..temperature import entropy, kl_divergence, kl_matrix, soften, standardized
from ..text_table import text_table
from .test_image import find_test_image


def distribution_table(logits: Tensor, classes: list[str], temperatures: list[float],
                       shown: list[int] | None = None) -> str:
    """Softened probabilities of one logit vector per temperature, with the entropy over all classes;
    ``shown`` limits the columns to some classes (the rest summed into one column)."""
    shown = list(range(len(classes))) if shown is None else shown
    rest = len(shown) < len(classes)
    rows = []
    for t in temperatures:
        p = soften(logits, t)
        cells = [f"{float(p[i]):.4f}" for i in shown]
        if rest:
            cells.append(f"{1 - float(p[shown].sum()):.4f}")
        rows.append([f"{t:g}", *cells, f"{float(entropy(p)):.3f}"])
    header = ["T", *[classes[i] for i in shown], *(["(others)"] if rest else []), "entropy (nats)"]
    return text_table(header, rows)


def _legend(logits: Tensor, temperatures: list[float]) -> dict[str, Tensor]:
    """Softened probabilities per temperature, labelled with the temperature and the entropy."""
    return {f"T={t:g} (H={float(entropy(soften(logits, t))):.2f})": soften(logits, t) for t in temperatures}


def logits_report(logits: list[float], classes: list[str], temperatures: list[float], out: Path) -> str:
    """The table and plot for a given logit vector."""
    if len(classes) != len(logits):
        raise ConfigError(f"--classes names {len(classes)} classes but --logits gives {len(logits)} values: give one "
                          f"name per logit.")
    z = torch.tensor(logits, dtype=torch.float64)
    plot = plot_distributions(_legend(z, temperatures), classes, out, "Softened probabilities per temperature")
    given = ", ".join(f"{c}={v:g}" for c, v in zip(classes, logits, strict=True))
    return (f"logits {given}; max entropy log({len(classes)}) = {torch.log(torch.tensor(float(len(classes)))):.3f} "
            f"nats\n{distribution_table(z, classes, temperatures)}\nplot: {plot}")


@dataclass
class Sample:
    """One test batch of real logits and the position of the chosen image in it."""

    teacher: Tensor
    student: Tensor | None
    position: int
    label: int
    classes: list[str]
    description: str


@torch.no_grad()
def load_sample(teacher: str, student: str | None, dataset: str | None, data_root: str | None, download: bool,
                index: int | None, class_name: str | None, batch_size: int, device: str) -> Sample:
    """Logits of the test batch holding image ``index`` (or the first image of ``class_name``)."""
    found = find_test_image(teacher, [student] if student else [], dataset, data_root, download, index, class_name,
                            batch_size, device)
    logits = [model(found.images).double().cpu() for model in found.models]
    return Sample(logits[0], logits[1] if student else None, found.position, found.label, found.classes,
                  found.description)


def model_report(sample: Sample, temperatures: list[float], top: int, out: Path) -> str:
    """Teacher distributions per T on the chosen image; with a student, KL(teacher || student) on the
    batch for equal and different temperatures, and the same with standardized logits."""
    zt = sample.teacher[sample.position]
    shown = zt.argsort(descending=True)[:top].tolist()
    if sample.label not in shown:  # always show the image's own class
        shown[-1] = sample.label
    names = sample.classes
    lines = [f"{sample.description}; teacher's softened probabilities (its most likely classes and the true one):",
             distribution_table(zt, names, temperatures, shown)]
    legend = {k: v[shown] for k, v in _legend(zt, temperatures).items()}
    plots = [plot_distributions(legend, [names[i] for i in shown], out, f"Teacher on {sample.description}")]
    if sample.student is not None:
        student_lines, student_plots = student_report(sample, temperatures, shown, out)
        lines += student_lines
        plots += student_plots
    return "\n".join(lines + [f"\nplots: {', '.join(map(str, plots))}"])


def student_report(sample: Sample, temperatures: list[float], shown: list[int],
                   out: Path) -> tuple[list[str], list[Path]]:
    """The student's distributions, raw and standardized, and KL(teacher || student) on the batch for every
    (T_s, T_t) and for equal T with raw vs standardized logits; the lines and the two plots."""
    names, position = sample.classes, sample.position
    zs_std, zt_std = standardized(sample.student), standardized(sample.teacher)
    lines = ["\nstudent's softened probabilities (same classes):",
             distribution_table(sample.student[position], names, temperatures, shown),
             "\nwith standardized logits (--logit-std), teacher:",
             distribution_table(zt_std[position], names, temperatures, shown),
             "student:", distribution_table(zs_std[position], names, temperatures, shown)]
    matrix = kl_matrix(sample.student, sample.teacher, temperatures)
    labels = [f"{t:g}" for t in temperatures]
    rows = [[label, *(f"{v:.4f}" for v in row)] for label, row in zip(labels, matrix, strict=True)]
    lines += [f"\nKL(teacher || student), mean over the batch of {len(sample.teacher)} test images "
              "(rows T_s, columns T_t; the diagonal is equal T):", text_table(["T_s \\ T_t", *labels], rows)]
    std_kl = [kl_divergence(zs_std, zt_std, t, t) for t in temperatures]
    spread_t, spread_s = float(sample.teacher.std(dim=1).mean()), float(sample.student.std(dim=1).mean())
    rows = [[f"{t:g}", f"{matrix[i][i]:.4f}", f"{std_kl[i]:.4f}", f"{t * spread_t:.2f}", f"{t * spread_s:.2f}"]
            for i, t in enumerate(temperatures)]
    lines += ["\nequal T, raw vs standardized logits (effective temperature = T * std of each sample's logits):",
              text_table(["T", "KL raw", "KL standardized", "teacher eff. T", "student eff. T"], rows)]
    stem = Path(out).with_suffix("")
    diagonal = [matrix[i][i] for i in range(len(temperatures))]
    plots = [plot_heatmap(matrix, labels, labels, Path(f"{stem}_kl.png"), "T_t (teacher)", "T_s (student)",
                          "KL(teacher || student) per temperature pair"),
             plot_lines({"raw logits": (temperatures, diagonal, None),
                         "standardized logits": (temperatures, std_kl, None)}, Path(f"{stem}_standardized.png"),
                        "T (student = teacher)", "KL(teacher || student)", "Equal temperatures: raw vs standardized",
                        logx=True)]
    return lines, plots
