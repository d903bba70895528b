"""``docs/results.md``: every method on one pair, several seeds, each method's gain over the vanilla student paired
by seed, from the run folders of ``kdzoo bench --grid bench/fashion_mnist_all_methods`` kept in the repository.

    kdzoo bench --grid bench/fashion_mnist_all_methods --out docs/results/runs   # continues where it stopped
    python -m kdzoo.docgen.results                                               # this page and the READMEs' excerpt

The run folders' small files (``config.yaml``, ``metrics.csv``, ``summary.json``, ``bench.json``) and the teacher's
checkpoint are committed (``docs/results/runs/.gitignore``), so the page regenerates from a clone and the grid run
again skips what is finished. The page groups the methods by what the paired 95 % intervals support (gain above 0,
not told apart from 0, below 0), alphabetically inside a group: no ranking the intervals do not support. Beside each
method: its mean ± std, the published CIFAR-100 number on :data:`PUBLISHED_PAIR` (labelled best or last epoch), and
the paired interval's half width against the one the two mean ± std cells give.
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..errors import KdzooError
from ..grid.paired import Gain, paired_gains, t_quantile_975
from ..grid.records import load_records
from ..grid.report import write_report
from ..grid.tables import Cell, DatasetTable, build_tables
from ..methods import list_methods
from ..published import PublishedTable, lookup, published_tables

RESULTS = Path("docs/results.md")
IMAGES = Path("docs/img")
README = Path("README.md")
#: The Chinese front page, beside the README; its excerpt says the same in Chinese.
README_ZH_NAME = "README.zh-CN.md"
FIGURE = "results_gains.png"  # in IMAGES
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
GRID = "bench/fashion_mnist_all_methods"
RUNS = Path("docs/results/runs")
METRIC = "last"
#: The published pair beside ours: RepDistiller's most reported one, a ResNet teacher 4x the student's width.
PUBLISHED_PAIR = "resnet32x4 -> resnet8x4"
FIXED_ROWS = ("teacher", "vanilla")
ABOVE, UNCLEAR, BELOW = "above", "unclear", "below"
GROUP_TITLES = {ABOVE: "Gain over the vanilla student, interval above 0",
                UNCLEAR: "Not told apart from the vanilla student (interval includes 0)",
                BELOW: "Below the vanilla student, interval below 0"}


@dataclass
class MethodResult:
    """One method row: its cell, its paired gains over vanilla and KD, the unpaired interval's half width."""

    row: str
    cell: Cell
    over_vanilla: Gain
    over_kd: Gain | None
    unpaired_half: float | None

    @property
    def group(self) -> str:
        gain = self.over_vanilla
        if not gain.excludes_zero:
            return UNCLEAR
        return ABOVE if gain.mean > 0 else BELOW


def the_table(runs: Path) -> DatasetTable:
    """The one table (one dataset, one set of images, one pair) of the grid's finished runs."""
    records, _ = load_records(runs)
    if not records:
        raise KdzooError(f"{runs} holds no finished run; run the grid first: kdzoo bench --grid {GRID} --out {runs}")
    tables = build_tables(records)
    if len(tables) != 1 or len(tables[0].pairs) != 1:
        raise KdzooError(f"{runs}: the results page takes one dataset and one pair; found "
                         f"{', '.join(f'{t.name}: {t.pairs}' for t in tables)}.")
    return tables[0]


def unpaired_half_width(method: list[float], vanilla: list[float]) -> float | None:
    """Half the 95 % interval of mean(method) - mean(vanilla) taken as two independent samples (what two
    ``mean ± std`` cells allow): t_{0.975, n1+n2-2} * sqrt(s1^2/n1 + s2^2/n2)."""
    if len(method) < 2 or len(vanilla) < 2:
        return None
    spread = statistics.variance(method) / len(method) + statistics.variance(vanilla) / len(vanilla)
    return t_quantile_975(len(method) + len(vanilla) - 2) * math.sqrt(spread)


def method_results(table: DatasetTable) -> list[MethodResult]:
    pair = table.pairs[0]
    gains = paired_gains(table, METRIC)
    vanilla = vanilla_values(table)
    out = []
    for row in table.rows:
        if row in FIXED_ROWS or (row, pair, "vanilla") not in gains:
            continue
        cell = table.cells[(row, pair)]
        out.append(MethodResult(row, cell, gains[(row, pair, "vanilla")], gains.get((row, pair, "kd")),
                                unpaired_half_width(cell.values(METRIC), vanilla)))
    return out


def narrowing(results: list[MethodResult]) -> list[float]:
    """Unpaired half width over paired half width, for every method that has both."""
    return sorted(r.unpaired_half / r.over_vanilla.half_width for r in results
                  if r.unpaired_half and r.over_vanilla.half_width)


def seed_correlation(result: MethodResult, vanilla: list[float]) -> float | None:
    """Pearson's r between a method's and the vanilla student's top-1 over the seeds, seed by seed (the pairs of
    :attr:`MethodResult.over_vanilla`). None unless every seed is paired (and neither side is constant)."""
    gain = result.over_vanilla
    if gain.n < 2 or gain.n != len(result.cell.values(METRIC)) or gain.n != len(vanilla):
        return None
    partners = [value - diff for value, diff in zip(gain.values, gain.diffs, strict=True)]
    if statistics.pvariance(gain.values) == 0 or statistics.pvariance(partners) == 0:
        return None
    return statistics.correlation(gain.values, partners)


def median_correlation(table: DatasetTable, results: list[MethodResult]) -> float | None:
    """The median over the methods of :func:`seed_correlation`."""
    vanilla = vanilla_values(table)
    found = [r for result in results if (r := seed_correlation(result, vanilla)) is not None]
    return statistics.median(found) if found else None


def mean_std_cell(values: list[float]) -> str:
    """``mean ± std``, or the one value with ``(n=1)`` (one run has no spread)."""
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def published_cell(row: str, tables: list[PublishedTable]) -> str:
    """``75.51 (last)`` with the gain over the same table's vanilla student when it has one, or ``–``."""
    found = lookup(tables, "cifar100", row, PUBLISHED_PAIR)
    if found is None:
        return "–"
    value, table = found
    vanilla = table.lookup("cifar100", "vanilla", PUBLISHED_PAIR)
    gain = f", {value - vanilla:+.2f}" if vanilla is not None and row not in FIXED_ROWS else ""
    return f"{value:.2f} ({table.metric_of(row)}{gain})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(row) + " |" for row in rows)])


def unmeasured(results: list[MethodResult]) -> list[str]:
    """The registered methods the committed runs do not measure (a method added since the grid last ran)."""
    return sorted(set(list_methods()) - {r.row for r in results})


NOT_MEASURED = "not measured yet"

HEADER = ["method", "top-1, mean ± std", "gain over vanilla [95 % CI]", "gain over KD [95 % CI]",
          "unpaired CI half width / paired", f"CIFAR-100 {PUBLISHED_PAIR}, published"]


def result_row(result: MethodResult, tables: list[PublishedTable]) -> list[str]:
    ratio = (f"{result.unpaired_half / result.over_vanilla.half_width:.1f}x"
             if result.unpaired_half and result.over_vanilla.half_width else "–")
    return [result.row, mean_std_cell(result.cell.values(METRIC)), result.over_vanilla.cell(),
            result.over_kd.cell() if result.over_kd else "–", ratio, published_cell(result.row, tables)]


def fixed_rows(table: DatasetTable, tables: list[PublishedTable]) -> list[list[str]]:
    pair = table.pairs[0]
    return [[row, mean_std_cell(table.cells[(row, pair)].values(METRIC)), "", "", "", published_cell(row, tables)]
            for row in FIXED_ROWS if (row, pair) in table.cells]


def grouped_tables(table: DatasetTable, results: list[MethodResult]) -> str:
    tables = list(published_tables().values())
    parts = [f"### Teacher and vanilla student\n\n{markdown_table(HEADER, fixed_rows(table, tables))}"]
    for group in (ABOVE, UNCLEAR, BELOW):
        rows = [result_row(r, tables) for r in sorted(results, key=lambda r: r.row) if r.group == group]
        if rows:
            parts.append(f"### {GROUP_TITLES[group]} ({len(rows)})\n\n{markdown_table(HEADER, rows)}")
    missing = unmeasured(results)
    if missing:
        rows = [[name, NOT_MEASURED, "", "", "", published_cell(name, tables)] for name in missing]
        parts.append(f"### Not measured yet ({len(missing)})\n\nMethods added since the grid last ran: add them to "
                     f"the grid's `methods:` and run it again (it skips the finished runs).\n\n"
                     f"{markdown_table(HEADER, rows)}")
    return "\n\n".join(parts)


def sources() -> str:
    used = [t for t in published_tables().values() if any(pair == PUBLISHED_PAIR for _, pair in t.values)]
    return "\n".join(f"- {t.name} ({t.metric} epoch; {t.runs}): {t.source}" for t in used)


def vanilla_values(table: DatasetTable) -> list[float]:
    """The vanilla student's top-1 per seed (one value per seed the grid ran)."""
    return table.cells[("vanilla", table.pairs[0])].values(METRIC)


def students(table: DatasetTable) -> list:
    """The grid's student runs (every run but the teacher's)."""
    return [r for r in table.records if r.role != "teacher"]


def scaled_epoch_options(table: DatasetTable) -> str:
    """The methods' ``*_epochs`` options as the grid's budget scaled them (read from the runs' configs), e.g.
    ``ab init_epochs=1``: one rule for every method (:func:`~kdzoo.engine.short_runs.scaled_to_run`)."""
    found = {}
    for record in students(table):
        for key, value in sorted(record.config.get("method_options", {}).items()):
            if key.endswith("_epochs") and isinstance(value, int):
                found[f"{record.variant} {key}={value}"] = None
    return ", ".join(sorted(found))


def median_student_seconds(table: DatasetTable) -> float:
    """The median time of a student's training loop, from the runs' summaries."""
    return statistics.median(r.summary["train_time_s"] for r in students(table))


def size_note(table: DatasetTable) -> str:
    """What the grid trained and how long its training loops took, from the runs' summaries and configs."""
    runs = students(table)
    teachers = [r for r in table.records if r.role == "teacher"]
    first = runs[0].config
    steps = first["epochs"] * math.ceil(first["train_subset"] / first["batch_size"])
    seeds = sorted({r.config["seed"] for r in runs})
    hours = sum(r.summary["train_time_s"] for r in table.records) / 3600
    teacher = (f"; the teacher ({teachers[0].config['model']}, {teachers[0].config['epochs']} epochs on the same "
               f"images) is trained first, once" if teachers else "")
    return (f"{len(table.records)} runs: {len(runs)} students ({len(seeds)} seeds: "
            f"{', '.join(map(str, seeds))}) and {len(teachers)} teacher. Each student trains {first['epochs']} "
            f"epochs on {first['train_subset']} training images ({steps} SGD steps of {first['batch_size']}) and is "
            f"tested on {first['test_subset']}{teacher}. Their training loops add up to {hours:.1f} hours on a "
            f"2-core CPU (evaluation not counted; runs that shared the CPU each counted whole).")


def first_seed_note(results: list[MethodResult]) -> str:
    """KD's gain over the vanilla student on the grid's first seed."""
    kd = next((r for r in results if r.row == "kd" and r.over_vanilla.n), None)
    if kd is None:
        return "the grid has no KD run to check it with."
    return f"on seed {kd.over_vanilla.seeds[0]}, KD beat the vanilla student by {kd.over_vanilla.diffs[0]:+.2f} points."


def pairing_note(ratios: list[float], seeds: int, correlation: float | None) -> str:
    """What pairing by seed did to the intervals (the unpaired half width over the paired one), said as it is, and
    why (the median correlation between a method's and the vanilla student's top-1 over the seeds)."""
    median = statistics.median(ratios)
    span = (f"the unpaired half width over the paired one is a median {median:.1f}x, from {ratios[0]:.1f}x to "
            f"{ratios[-1]:.1f}x over the methods (column \"unpaired CI half width / paired\")")
    unpaired = ("the interval that two `mean ± std` cells give for the same difference (independent samples, t with "
                "2n - 2 degrees of freedom)")
    shared = ("" if correlation is None else f" A method's top-1 and the vanilla student's correlate over the seeds "
              f"with a median r = {correlation:+.2f} over the methods (pairing pays as r nears 1).")
    if median > 1:
        return f"Pairing narrows the intervals: against {unpaired}, {span}.{shared}"
    return (f"At this budget pairing does not narrow the intervals: against {unpaired}, {span}.{shared} The "
            f"paired interval's t also has n - 1 = {seeds - 1} degrees of freedom against the unpaired one's "
            f"{2 * seeds - 2}. The paired interval stays the one to read: it holds whatever the correlation between "
            f"the runs of a seed, where the unpaired one assumes there is none.")


def results_page(table: DatasetTable, results: list[MethodResult], plot: str) -> str:
    pair = table.pairs[0]
    seeds = len(vanilla_values(table))
    counts = {g: sum(r.group == g for r in results) for g in GROUP_TITLES}
    kd = next((r for r in results if r.row == "kd"), None)
    kd_text = f"KD's gain over the vanilla student is {kd.over_vanilla.cell()}; " if kd else ""
    return f"""# Every method, measured

Every method of `kdzoo list methods` on Fashion-MNIST, on one pair ({pair}), at the tutorial's budget, with {seeds}
seeds. The run folders' small files are in the repository, so this page regenerates from a clone, and the
grid, run again, continues where it stopped (finished runs are skipped):

```sh
kdzoo bench --grid {GRID} --out {RUNS.as_posix()}
python -m kdzoo.docgen.results    # rewrites this page and the README's excerpt
```

{size_note(table)}

**Why this budget.** The [tutorial](tutorial.md)'s: a student's training loop took a median
{median_student_seconds(table):.0f} s in this grid and the vanilla student reaches
{mean_std_cell(vanilla_values(table))} %. Shorter runs (64 SGD steps, an earlier version
of this page) left the students near half their accuracy, where the seeds disagreed by up to 21 points and hid
every difference. The first seed alone already shows KD's gain: {first_seed_note(results)}

**How to read it.** For one seed every run starts from the same student weights and sees the same batches
(`kdzoo report` pairs runs by seed), so a method's gain over the vanilla student is measured seed by seed: the
luck that the methods share on a seed cancels. Each gain is the mean of the {seeds} per-seed differences (last
epoch, points of top-1) with its 95 % confidence interval (t distribution, n - 1 degrees of freedom); `*` marks
an interval that excludes 0. {kd_text}{counts[ABOVE]} methods gain with an interval above 0,
{counts[UNCLEAR]} cannot be told apart from the vanilla student at this budget, and {counts[BELOW]}
{"is" if counts[BELOW] == 1 else "are"} below it with an interval below 0.
Inside each group the methods are in alphabetical order: the intervals overlap too much to rank them.
{pairing_note(narrowing(results), seeds, median_correlation(table, results))}

These are {students(table)[0].config['epochs']}-epoch runs on an easy dataset, the first stretch of a training run.
Init stages, warm-ups and curricula follow one rule: each method's default, set for RepDistiller's 240 epochs, is
scaled to this run's length, at least 1 epoch ({scaled_epoch_options(table)}).
Methods that ramp their loss in (DKD's warm-up, CTKD's curriculum) or train extra modules from scratch are at a
disadvantage here; the published CIFAR-100 numbers (240 epochs, RepDistiller's recipe) are beside each method for
that reason, with the epoch they report (last or best) and their gain over the same table's vanilla student. They
come from different code bases and protocols:

{sources()}

{grouped_tables(table, results)}

![gain of each method over the vanilla student, paired by seed, with 95 % intervals]({plot})

`kdzoo report {RUNS.as_posix()}` prints the full report of these runs (best and last epoch, curves, the paired
gains over KD). Training time and images/s are not compared here: a grid's runs share the machine with each
other and with whatever else runs, so their times measure no method's cost; [the speed guide](guide/speed.md)
measures them side by side.
"""


EXCERPT_HEADER = HEADER[:3]


def excerpt_rows(table: DatasetTable, results: list[MethodResult]) -> list[list[str]]:
    """The teacher, the vanilla student and KD: top-1 and gain over vanilla, as on the page."""
    kd = [result_row(r, [])[:3] for r in results if r.row == "kd"]
    return [row[:3] for row in fixed_rows(table, [])] + kd


def excerpt_facts(table: DatasetTable, results: list[MethodResult], join: str, none: str) -> tuple[dict[str, str], int]:
    """The excerpt's lists of methods by group (names joined by ``join``, ``none`` for an empty group) and the
    number of seeds."""
    groups = {g: join.join(sorted(r.row for r in results if r.group == g)) or none for g in GROUP_TITLES}
    return groups, len(vanilla_values(table))


def readme_excerpt(table: DatasetTable, results: list[MethodResult]) -> str:
    groups, seeds = excerpt_facts(table, results, ", ", "none")
    return (f"{BEGIN}\n{markdown_table(EXCERPT_HEADER, excerpt_rows(table, results))}\n\nFashion-MNIST, "
            f"{table.pairs[0]}, {seeds} seeds, last epoch; gains paired by seed. Of the "
            f"{len(results)} methods, these gain over the vanilla student with a 95 % interval above 0: "
            f"{groups[ABOVE]}; below 0: {groups[BELOW]}; the others are not told apart from it at this budget"
            f"{''.join(f'; {NOT_MEASURED}: ' + ', '.join(m) for m in [unmeasured(results)] if m)}. "
            f"Every method, the published CIFAR-100 numbers beside and how to read them: "
            f"[docs/results.md](docs/results.md).\n{END}")


ZH_LABELS = {"method": "方法", "teacher": "教师", "vanilla": "普通学生（vanilla）",
             "top-1, mean ± std": "top-1，均值 ± 标准差",
             "gain over vanilla [95 % CI]": "相对 vanilla 的提升 [95% 置信区间]"}


def readme_excerpt_zh(table: DatasetTable, results: list[MethodResult]) -> str:
    """:func:`readme_excerpt` for README.zh-CN.md: the same cells and lists, said in Chinese."""
    groups, seeds = excerpt_facts(table, results, "、", "无")
    header = [ZH_LABELS[h] for h in EXCERPT_HEADER]
    body = [[ZH_LABELS.get(row[0], row[0]), *row[1:]] for row in excerpt_rows(table, results)]
    return (f"{BEGIN}\n{markdown_table(header, body)}\n\nFashion-MNIST，{table.pairs[0]}，{seeds} 个随机种子，"
            f"取最后一个 epoch；提升按种子配对计算。{len(results)} 种方法里，95% 置信区间整体高于 0 的"
            f"（确实比 vanilla 好）：{groups[ABOVE]}；整体低于 0 的：{groups[BELOW]}；"
            f"其余方法在这个训练预算下和 vanilla 分不出高下"
            f"{''.join('；尚未测量：' + '、'.join(m) for m in [unmeasured(results)] if m)}。"
            f"全部方法的结果、旁边列出的 CIFAR-100 论文数字，"
            f"以及这些数字该怎么读，见 [docs/results.md](docs/results.md)（英文）。\n{END}")


def with_excerpt(readme: str, excerpt: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise KdzooError(f"README.md has no {BEGIN} ... {END} markers for the results excerpt.")
    head, rest = readme.split(BEGIN, 1)
    return head + excerpt + rest.split(END, 1)[1]


def regenerate(runs: Path = RUNS, results: Path = RESULTS, images: Path = IMAGES, readme: Path = README) -> None:
    """Report the grid in ``runs`` (``kdzoo report``), then write docs/results.md, its plot and the excerpts."""
    table = the_table(runs)
    _, written = write_report(runs, metric=METRIC)
    gains = [p for p in written if p.name.startswith("gains_")]
    if len(gains) != 1:
        raise KdzooError(f"expected one gains plot from the report of {runs}, found {len(gains)}.")
    results_by_row = method_results(table)
    images.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gains[0], images / FIGURE)
    results.write_text(results_page(table, results_by_row, f"img/{FIGURE}"), encoding="utf-8")
    readme.write_text(with_excerpt(readme.read_text(encoding="utf-8"), readme_excerpt(table, results_by_row)),
                      encoding="utf-8")
    done = [results, images / FIGURE, readme]
    chinese = readme.with_name(README_ZH_NAME)
    if chinese.is_file():
        chinese.write_text(with_excerpt(chinese.read_text(encoding="utf-8"), readme_excerpt_zh(table, results_by_row)),
                           encoding="utf-8")
        done.append(chinese)
    print("written: " + ", ".join(map(str, done)))


if __name__ == "__main__":
    regenerate()
