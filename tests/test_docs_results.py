"""docs/results.md (kdzoo.docgen.results): every method's gain over the vanilla student paired by seed, grouped by
what the intervals support, the published numbers labelled, the excerpts in README.md and README.zh-CN.md; and the
page in the repository is the one its committed runs give."""

import math
import statistics
from pathlib import Path

import pytest
import yaml

from kdzoo.docgen import results as docgen
from kdzoo.errors import KdzooError
from kdzoo.methods import list_methods
from kdzoo.published import published_tables
from test_report import fake_run

ROOT = Path(__file__).resolve().parents[1]
VANILLA = [70.0, 75.0, 80.0]   # far apart: the unpaired interval is wide, the paired one is not
CONFIG = {"epochs": 5, "batch_size": 128, "train_subset": 8000, "test_subset": 2000, "data_seed": 0}
#: gain over vanilla per seed: kd steady above 0, dkd noisy, at steady below 0, byot (self-distillation) above
GAINS = {"kd": [0.9, 1.0, 1.1], "dkd": [3.0, -2.0, 0.5], "at": [-2.0, -2.2, -1.9], "byot": [2.0, 2.5, 2.2]}


@pytest.fixture
def grid(tmp_path):
    root = tmp_path / "runs"
    kw = {"dataset": "fashion_mnist"}
    fake_run(root, "teacher_resnet20_seed0", model="resnet20", seed=0, best=85.0, last=84.0,
             config={**CONFIG, "epochs": 7},
             info={"role": "teacher", "label": "teacher", "variant": "teacher", "order": [0], "pair": None,
                   "pairs": [["resnet20", "resnet8"]]}, **kw)
    for seed, v in enumerate(VANILLA):
        fake_run(root, f"vanilla_resnet8_seed{seed}", model="resnet8", seed=seed, best=v, last=v, config=CONFIG, **kw)
        for order, (method, diffs) in enumerate(GAINS.items(), start=2):
            self_distill = method == "byot"
            top1 = v + diffs[seed]
            fake_run(root, f"{method}_seed{seed}", model="resnet8", seed=seed, best=top1, last=top1, method=method,
                     teacher_arch=None if self_distill else "resnet20", config=CONFIG,
                     info={"role": "self" if self_distill else "distill", "label": method, "variant": method,
                           "order": [order, 0], "pair": None if self_distill else ["resnet20", "resnet8"],
                           "pairs": [["resnet20", "resnet8"]]}, **kw)
    return root


def test_the_unpaired_interval_is_that_of_two_independent_samples():
    half = docgen.unpaired_half_width([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert half == pytest.approx(2.776 * math.sqrt(1 / 3 + 4 / 3), abs=1e-3)   # t_{0.975, 4}
    assert docgen.unpaired_half_width([1.0], [2.0, 3.0]) is None


def test_methods_are_grouped_by_their_paired_interval(grid):
    table = docgen.the_table(grid)
    found = {r.row: r for r in docgen.method_results(table)}
    assert {row: r.group for row, r in found.items()} == {"kd": "above", "dkd": "unclear", "at": "below",
                                                          "byot": "above"}
    kd = found["kd"]
    assert kd.over_vanilla.diffs == pytest.approx(GAINS["kd"]) and kd.over_kd is None
    assert found["dkd"].over_kd.diffs == pytest.approx([2.1, -3.0, -0.6])
    # seeds 5 points apart: the unpaired interval of the same difference is many times the paired one
    assert kd.unpaired_half / kd.over_vanilla.half_width > 10


def test_the_page_says_whether_pairing_narrowed_the_intervals_as_the_ratios_say():
    narrower = docgen.pairing_note([0.9, 1.6, 2.4], seeds=5, correlation=0.8)
    assert narrower.startswith("Pairing narrows the intervals") and "a median 1.6x, from 0.9x to 2.4x" in narrower
    assert "median r = +0.80 over the methods" in narrower
    wider = docgen.pairing_note([0.5, 0.7, 1.3], seeds=5, correlation=-0.2)
    assert wider.startswith("At this budget pairing does not narrow the intervals") and "a median 0.7x" in wider
    assert "median r = -0.20" in wider and "n - 1 = 4 degrees of freedom against the unpaired one's 8" in wider
    assert "correlate" not in docgen.pairing_note([2.0], seeds=3, correlation=None)


def test_the_seed_correlation_is_pearsons_r_of_the_paired_values(grid):
    table = docgen.the_table(grid)
    vanilla = docgen.vanilla_values(table)
    for result in docgen.method_results(table):
        method = [v + d for v, d in zip(vanilla, GAINS[result.row], strict=True)]
        expected = statistics.correlation(vanilla, method)
        assert docgen.seed_correlation(result, vanilla) == pytest.approx(expected, abs=1e-9), result.row


def test_regenerate_writes_the_page_the_plot_and_both_excerpts(grid, tmp_path):
    readme, chinese = tmp_path / "README.md", tmp_path / "README.zh-CN.md"
    readme.write_text(f"intro\n{docgen.BEGIN}\nOLD TABLE\n{docgen.END}\nrest\n", encoding="utf-8")
    chinese.write_text(f"中文\n{docgen.BEGIN}\n旧表\n{docgen.END}\n", encoding="utf-8")
    docgen.regenerate(grid, tmp_path / "results.md", tmp_path / "img", readme)
    page = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "16 runs: 15 students (3 seeds: 0, 1, 2) and 1 teacher" in page
    assert "5 epochs on 8000 training images (315 SGD steps of 128)" in page
    above = page.index("### Gain over the vanilla student, interval above 0 (2)")
    unclear = page.index("### Not told apart from the vanilla student (interval includes 0) (1)")
    below = page.index("### Below the vanilla student, interval below 0 (1)")
    assert above < page.index("| byot |") < page.index("| kd |") < unclear < page.index("| dkd |") < below
    assert "| kd | 76.00 ± 5.10 | +1.00 [+0.75, +1.25] * |" in page
    assert "| teacher | 84.00 (n=1) |" in page   # one run: no spread to show
    assert "2 methods gain with an interval above 0,\n1 cannot be told apart" in page
    assert "Pairing narrows the intervals" in page   # seeds 5 points apart, gains steady
    assert (tmp_path / "img" / docgen.FIGURE).stat().st_size > 0 and (grid / "report.md").is_file()
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n" + docgen.BEGIN) and text.endswith(docgen.END + "\nrest\n")
    assert "OLD TABLE" not in text
    assert "| kd | 76.00 ± 5.10 | +1.00 [+0.75, +1.25] * |" in text
    assert "interval above 0: byot, kd; below 0: at;" in text
    zh = chinese.read_text(encoding="utf-8")
    assert "| 普通学生（vanilla） | 75.00 ± 5.00 |  |" in zh and "byot、kd" in zh and "旧表" not in zh


def test_a_method_without_committed_runs_is_listed_as_not_measured_yet(grid):
    """A method added after the grid ran (here every registered method but the four the runs hold) is on the page
    and in both excerpts as not measured yet, with its published number, instead of failing the page."""
    table = docgen.the_table(grid)
    results = docgen.method_results(table)
    page = docgen.results_page(table, results, "img/x.png")
    missing = sorted(set(list_methods()) - set(GAINS))
    assert docgen.unmeasured(results) == missing and "dkd" not in missing
    assert f"### Not measured yet ({len(missing)})" in page
    tables = list(published_tables().values())
    assert f"| crd | not measured yet |  |  |  | {docgen.published_cell('crd', tables)} |" in page
    assert f"not measured yet: {', '.join(missing)}." in docgen.readme_excerpt(table, results)
    assert f"尚未测量：{'、'.join(missing)}。" in docgen.readme_excerpt_zh(table, results)


def test_the_published_number_is_labelled_with_its_epoch_and_its_gain_over_the_same_tables_vanilla():
    tables = list(published_tables().values())
    repdistiller = published_tables()["repdistiller_same_family"]
    kd = repdistiller.lookup("cifar100", "kd", docgen.PUBLISHED_PAIR)
    vanilla = repdistiller.lookup("cifar100", "vanilla", docgen.PUBLISHED_PAIR)
    assert docgen.published_cell("kd", tables) == f"{kd:.2f} (last, {kd - vanilla:+.2f})"
    assert docgen.published_cell("vanilla", tables) == f"{vanilla:.2f} (last)"
    dkd = docgen.published_cell("dkd", tables)
    assert "(best" in dkd   # the newer methods' tables report the best epoch
    assert docgen.published_cell("no_such_method", tables) == "–"


def test_a_folder_without_runs_or_with_two_pairs_is_refused(grid, tmp_path):
    with pytest.raises(KdzooError, match="kdzoo bench --grid bench/fashion_mnist_all_methods"):
        docgen.the_table(tmp_path / "empty")
    fake_run(grid, "extra", model="resnet8", seed=0, best=70.0, last=70.0, method="kd", teacher_arch="vgg8",
             config=CONFIG, dataset="fashion_mnist")
    with pytest.raises(KdzooError, match="one pair"):
        docgen.the_table(grid)


def test_the_grid_runs_every_method_with_three_seeds_or_more():
    grid = yaml.safe_load((ROOT / "src" / "kdzoo" / "configs" / "bench" / "fashion_mnist_all_methods.yaml").read_text())
    methods = [m if isinstance(m, str) else m["method"] for m in grid["methods"]]
    measured = {r.row for r in docgen.method_results(docgen.the_table(ROOT / docgen.RUNS))}
    assert measured <= set(methods) <= set(list_methods()) | {"vanilla"} and "vanilla" in methods
    assert len(grid["seeds"]) >= 3 and len(grid["pairs"]) == 1


def test_the_page_and_the_excerpts_are_those_of_the_committed_runs():
    """docs/results.md and both READMEs' excerpts are what docgen.results makes of docs/results/runs (regenerate
    after the grid changes: python -m kdzoo.docgen.results)."""
    runs = ROOT / docgen.RUNS
    table = docgen.the_table(runs)
    results = docgen.method_results(table)
    assert min(len(r.over_vanilla.diffs) for r in results) >= 3
    page = (ROOT / docgen.RESULTS).read_text(encoding="utf-8")
    assert all(f"| {name} | {docgen.NOT_MEASURED} |" in page for name in docgen.unmeasured(results))
    assert page == docgen.results_page(table, results, f"img/{docgen.FIGURE}")
    for name, excerpt in (("README.md", docgen.readme_excerpt), ("README.zh-CN.md", docgen.readme_excerpt_zh)):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert text[text.index(docgen.BEGIN):text.index(docgen.END) + len(docgen.END)] == excerpt(table, results)


def strings_in(value):
    """Every string inside a JSON/YAML value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def test_the_committed_runs_name_no_folder_of_the_machine_that_ran_them():
    """Run folders, data and the teacher cache are named as the grid named them (relative), so the committed
    summaries and configs say nothing of the machine they ran on."""
    runs = ROOT / docgen.RUNS
    files = [*runs.glob("*/summary.json"), *runs.glob("*/config.yaml")]
    assert files
    for path in files:
        absolute = [s for s in strings_in(yaml.safe_load(path.read_text(encoding="utf-8")))
                    if s.startswith(("/", "~")) or (len(s) > 2 and s[1:3] in (":\\", ":/"))]
        assert not absolute, f"{path.relative_to(ROOT)} names {absolute}"
