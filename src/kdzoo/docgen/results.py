"""``docs/results.md``: the measured table of every method, from a finished ``kdzoo bench`` grid and its report.

    kdzoo bench --grid bench/fashion_mnist_all_methods
    kdzoo report runs/bench/fashion_mnist_all_methods
    python -m kdzoo.docgen.results runs/bench/fashion_mnist_all_methods

writes ``docs/results.md`` (the report exactly as ``kdzoo report`` wrote it, below the command, the grid's size
and how long it took), copies its gains plot into ``docs/img/``, and rewrites the README's excerpt between
:data:`BEGIN` and :data:`END`: the teacher, vanilla and the best methods' rows, their cells as printed; and the same
excerpt, in Chinese, in ``README.zh-CN.md`` beside it.
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
from pathlib import Path

from ..errors import KdzooError
from ..run_folder import CONFIG, SUMMARY, load_run_config, read_summary

RESULTS = Path("docs/results.md")
IMAGES = Path("docs/img")
README = Path("README.md")
#: The Chinese front page, beside the README; its excerpt names the fixed rows in Chinese.
README_ZH_NAME = "README.zh-CN.md"
ZH_LABELS = {"method": "方法", "teacher": "教师", "vanilla": "普通学生（vanilla）"}
FIGURE = "results_gains.png"  # in IMAGES
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
GRID = "bench/fashion_mnist_all_methods"
RUNS = Path("runs/bench/fashion_mnist_all_methods")
FIXED_ROWS = ("teacher", "vanilla")
#: The larger budget the page suggests for ranking methods: epochs per student and training images (all of
#: Fashion-MNIST's); the teachers keep their grid's epochs.
FULL_EPOCHS, FULL_TRAIN = 30, 60000


def first_table(markdown: str) -> list[list[str]]:
    """The first Markdown table of ``markdown`` as rows of cells (header first, the ``|---|`` line left out)."""
    rows, started = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            started = True
            if not set(line) <= set("|-: "):
                rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif started:
            break
    if not rows:
        raise KdzooError("the report holds no table; run `kdzoo report RUNS` on the finished grid first.")
    return rows


def rank_key(row: list[str]) -> tuple[int, float]:
    """Rows measured on more pairs first, then the mean over its pairs of each cell's first number (the mean
    top-1); cells of pairs a method does not run on (``–``) are left out."""
    values = [float(cell.split()[0]) for cell in row[1:] if cell and cell[0].isdigit()]
    return len(values), (sum(values) / len(values) if values else float("-inf"))


def top_rows(table: list[list[str]], count: int) -> list[list[str]]:
    """The header, the teacher and vanilla rows, then the ``count`` methods with the highest mean top-1 (among
    those measured on every pair)."""
    header, rows = table[0], table[1:]
    fixed = [row for row in rows if row[0] in FIXED_ROWS]
    methods = sorted((row for row in rows if row[0] not in FIXED_ROWS), key=rank_key, reverse=True)
    return [header, *fixed, *methods[:count]]


def as_markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])


def cost_speeds(report: str) -> dict[str, list[float]]:
    """Images/s of every cell of the report's first training-cost table, by row (cells without runs left out)."""
    table = first_table(report.split("### Training cost", 1)[1]) if "### Training cost" in report else []
    return {row[0]: [float(cell.rsplit(", ", 1)[1].split()[0]) for cell in row[1:] if cell.endswith(" img/s")]
            for row in table[1:]}


def full_grid_days(report: str, students: int, teachers: int, teacher_epochs: int) -> float:
    """Days the grid would take one run after another at :data:`FULL_EPOCHS` x :data:`FULL_TRAIN` images per
    student, at the images/s its report measured (each student at the mean of the students' per-image times)."""
    speeds = cost_speeds(report)
    student = [v for row, values in speeds.items() if row != "teacher" for v in values]
    if not student:
        raise KdzooError("the report has no training-cost table with images/s; run `kdzoo report RUNS` again.")
    seconds = students * FULL_EPOCHS * FULL_TRAIN * statistics.fmean(1 / v for v in student)
    if teachers and speeds.get("teacher"):
        seconds += teachers * teacher_epochs * FULL_TRAIN * statistics.fmean(1 / v for v in speeds["teacher"])
    return seconds / 86400


def summaries(runs: Path) -> list[dict]:
    found = [read_summary(path.parent) for path in sorted(runs.glob(f"*/{SUMMARY}"))]
    if not found:
        raise KdzooError(f"{runs} holds no finished run (no */{SUMMARY}); run the grid first: "
                         f"kdzoo bench --grid {GRID}")
    return found


def elapsed_minutes(runs: Path) -> float:
    """From the first run's start (its config.yaml) to the last run's end (its summary.json), in minutes."""
    starts = [path.stat().st_mtime for path in runs.glob(f"*/{CONFIG}")]
    ends = [path.stat().st_mtime for path in runs.glob(f"*/{SUMMARY}")]
    return (max(ends) - min(starts)) / 60


def teachers_and_students(runs: Path) -> tuple[list[dict], list[dict]]:
    """The summaries of the grid's teacher runs and of its student runs."""
    done = summaries(runs)
    teachers = [s for s in done if s["run"].startswith("teacher_")]
    return teachers, [s for s in done if s not in teachers]


def size_note(runs: Path) -> str:
    """What the grid trained and how long it took, from its runs' summaries."""
    teachers, students = teachers_and_students(runs)
    done = teachers + students
    first = students[0]
    batch_size = load_run_config(runs / first["run"])["batch_size"]
    steps = first["epochs"] * math.ceil(first["train_subset"] / batch_size)
    seeds = sorted({s["seed"] for s in students})
    teacher_epochs = f"; each teacher trains {teachers[0]['epochs']} epochs on the same images" if teachers else ""
    return (f"{len(done)} runs ({len(teachers)} teachers, {len(students)} students), one after another, took "
            f"{elapsed_minutes(runs):.0f} minutes on a 2-core CPU. Each student trains {first['epochs']} epochs on "
            f"{first['train_subset']} training images ({steps} SGD steps of {batch_size}) and is tested on "
            f"{first['test_subset']}, seeds {', '.join(map(str, seeds))}{teacher_epochs}. These sizes are what fits "
            f"the grid in under an hour on such a CPU: the first "
            f"stretch of training on an easy dataset, far from RepDistiller's 240 CIFAR-100 epochs.")


def full_grid_note(runs: Path, report: str) -> str:
    """How long the larger grid would take on this CPU, estimated from the report's images/s."""
    teachers, students = teachers_and_students(runs)
    days = full_grid_days(report, len(students), len(teachers), teachers[0]["epochs"] if teachers else 0)
    return (f"about {days:.0f} days on the same 2-core CPU, one run after another, at the images/s measured below; "
            f"far less on a GPU, not measured here")


def results_page(runs: Path, report: str, plot: str) -> str:
    return f"""# Every method, measured

Every method of `kdzoo list methods` on Fashion-MNIST, on a same-family pair (resnet20 -> resnet8) and a
cross-family one (vgg8 -> resnet8), the same budget for all, two seeds. Reproduce it with:

```sh
kdzoo bench --grid {GRID}
kdzoo report {RUNS.as_posix()}
python -m kdzoo.docgen.results {RUNS.as_posix()}   # rewrites this page and the README's excerpt
```

{size_note(runs)}

Below is the report exactly as `kdzoo report` printed it. AB, FSP and KDSVD pair the feature maps one to one
and so do not run on vgg8 -> resnet8 (four stages against three; RepDistiller's N/A). BYOT and USKD distill a
student from itself, so their cells repeat across pairs.

**How to read it.** A run here is the first stretch of a training run, and there the seeds disagree by several
points (one standard deviation reaches {max_std(first_table(report)):.0f} points), so two methods whose cells
differ by less than about two standard deviations are not told apart. Methods that ramp their loss in (DKD's
warm-up, scaled to the first of the two epochs; CTKD's temperature curriculum) and those that train extra modules
from scratch start behind. What the table does show: every method runs and learns on both pairs, and what each
one costs in time and images/s beside vanilla and KD. To rank methods, run the same grid with a larger budget
into its own folder ({full_grid_note(runs, report)}), and read the published CIFAR-100 numbers on each
method's page ([docs/methods/](methods/README.md)):

```sh
kdzoo bench --grid {GRID} --budget {FULL_EPOCHS} --set train_subset={FULL_TRAIN} --out runs/bench/all_methods_full
```

![gain of each method over the vanilla student]({plot})

{report.strip()}
"""


def max_std(table: list[list[str]]) -> float:
    """The largest standard deviation in the table's ``mean ± std`` cells."""
    return max((float(cell.split("±")[1].split()[0]) for row in table[1:] for cell in row[1:] if "±" in cell),
               default=0.0)


def readme_excerpt(table: list[list[str]]) -> str:
    methods = sum(row[0] not in FIXED_ROWS for row in table[1:])
    return (f"{BEGIN}\n{as_markdown(top_rows(table, 5))}\n\nThe five highest of all {methods} methods (mean ± std "
            f"over two seeds). At this small CPU budget most differences are\nwithin the seeds' noise; every method, "
            f"its training time and images/s, and how to read them: [docs/results.md](docs/results.md).\n{END}")


def readme_excerpt_zh(table: list[list[str]]) -> str:
    """:func:`readme_excerpt` for README.zh-CN.md: the same cells, the header's and fixed rows' labels in Chinese."""
    methods = sum(row[0] not in FIXED_ROWS for row in table[1:])
    rows = [[ZH_LABELS.get(row[0], row[0]), *row[1:]] for row in top_rows(table, 5)]
    return (f"{BEGIN}\n{as_markdown(rows)}\n\n这是全部 {methods} 种方法里最高的五种"
            "（两个随机种子的均值 ± 标准差）。在这么小的 CPU 训练预算下，"
            "多数方法之间的差距都落在\n种子带来的波动之内；每种方法的结果、"
            "训练时间和每秒图像数，以及这些数字该怎么读，"
            f"见 [docs/results.md](docs/results.md)（英文）。\n{END}")


def with_excerpt(readme: str, excerpt: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise KdzooError(f"README.md has no {BEGIN} ... {END} markers for the results excerpt.")
    head, rest = readme.split(BEGIN, 1)
    return head + excerpt + rest.split(END, 1)[1]


def regenerate(runs: Path, results: Path = RESULTS, images: Path = IMAGES, readme: Path = README) -> None:
    """Write docs/results.md, its plot and the README excerpt from the grid folder ``runs``."""
    report_file = runs / "report.md"
    if not report_file.is_file():
        raise KdzooError(f"{report_file} does not exist; run `kdzoo report {runs}` first.")
    report = report_file.read_text(encoding="utf-8")
    gains = sorted((runs / "plots").glob("gains_*.png"))
    if len(gains) != 1:
        raise KdzooError(f"expected one gains plot in {runs / 'plots'}, found {len(gains)}; run `kdzoo report`.")
    images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gains[0], images / FIGURE)
    results.write_text(results_page(runs, report, f"img/{FIGURE}"), encoding="utf-8")
    readme.write_text(with_excerpt(readme.read_text(encoding="utf-8"), readme_excerpt(first_table(report))),
                      encoding="utf-8")
    written = [results, images / FIGURE, readme]
    chinese = readme.with_name(README_ZH_NAME)
    if chinese.is_file():
        chinese.write_text(with_excerpt(chinese.read_text(encoding="utf-8"), readme_excerpt_zh(first_table(report))),
                           encoding="utf-8")
        written.append(chinese)
    print("written: " + ", ".join(map(str, written)))


if __name__ == "__main__":
    regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else RUNS)
