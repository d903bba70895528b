"""What a new user read wrong in reports, run headers and the demo (issue 32): a zero-width interval marked
significant, tables and plots that do not say how long the runs trained, "n=....", "1 epochs", a teacher line for
plain training, a trivial top-5, an unexplained cost plot, and no word on how to get the ``kdzoo`` command after
``make demo``."""

import contextlib
import csv
import io
import json
import re
import sys
import sysconfig
from pathlib import Path

import pytest
from matplotlib.container import BarContainer

from conftest import TINY
from kdzoo.commands import main
from kdzoo.commands.demo import command_hint
from kdzoo.grid.paired import Gain
from kdzoo.text_table import plural
from test_bench import write_grid
from test_report import fake_run, saved_figures  # noqa: F401  (a fixture)

PAIR = "resnet20 -> resnet8"
SMALL = {"model": "resnet8", "dataset": "fashion_mnist"}


def small_grid(root: Path, epochs: int = 4, seeds=(0, 1), dkd_below_kd: float = 0.3) -> Path:
    """The runs of the README's default grid (bench/fashion_mnist_small) as its report sees them: a teacher trained
    8 epochs, then vanilla, KD and DKD students for ``epochs``, one per seed; DKD below KD by the same points on every
    seed (so its differences over KD are all equal)."""
    fake_run(root, "teacher_resnet20", model="resnet20", seed=0, best=85.0, last=85.0, dataset="fashion_mnist",
             config={"epochs": 8}, info={"role": "teacher", "label": "teacher", "variant": "teacher", "order": [0]})
    for seed in seeds:
        vanilla = 70.1 + 1.3 * seed
        kd = vanilla + 2.2 - 0.4 * seed
        for name, top1, method in (("vanilla", vanilla, None), ("kd", kd, "kd"), ("dkd", kd - dkd_below_kd, "dkd")):
            fake_run(root, f"{name}_seed{seed}", seed=seed, best=top1, last=top1, method=method,
                     teacher_arch="resnet20" if method else None, config={"epochs": epochs}, **SMALL)
    return root


def report_csv(root: Path) -> dict[str, dict[str, str]]:
    with open(root / "report.csv", newline="", encoding="utf-8") as f:
        return {row["method"]: row for row in csv.DictReader(f)}


def title(figure) -> str:
    """The figure's title, unwrapped."""
    return figure.axes[0].get_title().replace("\n", " ")


def drawn_error_bars(figure) -> list[float]:
    """The lengths of the error bars drawn on a bar plot (NaN ones are not drawn)."""
    lengths = []
    for ax in figure.axes:
        for bars in ax.containers:
            if isinstance(bars, BarContainer) and bars.errorbar is not None:
                for lines in bars.errorbar.lines[2]:
                    lengths += [abs(s[1][1] - s[0][1]) for s in lines.get_segments()]
    return lengths


def test_two_seeds_with_equal_differences_give_no_interval_and_no_star(cli, tmp_path, saved_figures):  # noqa: F811
    """Today: "dkd vs KD -0.30 [-0.30, -0.30] *" (sd 0, a zero-width interval that excludes 0)."""
    root = small_grid(tmp_path / "small")
    code, out, err = cli("report", root)
    assert code == 0, err
    dkd = next(line for line in out.splitlines() if line.startswith("| dkd | 2 |"))
    assert dkd.endswith("| 2 | -0.30 (n=2: no interval) |") and "*" not in dkd and "[" not in dkd, dkd
    assert "| kd | 2 | +2.00 (n=2: no interval) | – | – |" in out
    assert "Fewer than 3 pairs give no interval, nor do differences that are all equal" in out
    row = report_csv(root)["dkd"]
    assert float(row[f"{PAIR} | gain_kd_last_mean"]) == pytest.approx(-0.3)
    for column in ("ci_low", "ci_high", "excludes_0"):
        assert row[f"{PAIR} | gain_kd_last_{column}"] == "" and row[f"{PAIR} | gain_vanilla_best_{column}"] == ""
    (gains,) = [f for f in saved_figures if "gain over the vanilla student" in title(f)]
    assert drawn_error_bars(gains) == [] and "*" not in title(gains)
    assert "no error bar: no interval (n < 3 or all differences equal)" in title(gains)


def test_identical_differences_over_more_seeds_give_no_interval(cli, tmp_path, saved_figures):  # noqa: F811
    """Three seeds with the same difference (up to a float's rounding): no interval, no `*`; three that differ get
    their interval and error bar."""
    diffs = [74.4 - 74.1, 71.5 - 71.2, 80.3 - 80.0]  # 0.3 each, not bit for bit
    assert len(set(diffs)) > 1
    equal = Gain("kd", PAIR, "vanilla", "last", seeds=[0, 1, 2], diffs=diffs)
    assert equal.cell() == "+0.30 (all differences equal: no interval)"
    assert equal.interval is None and equal.excludes_zero is None and equal.half_width is None
    spread = Gain("kd", PAIR, "vanilla", "last", seeds=[0, 1, 2], diffs=[0.3, 0.5, 0.4])
    assert spread.no_interval is None and spread.cell() == "+0.40 [+0.15, +0.65] *"
    root = small_grid(tmp_path / "three", seeds=(0, 1, 2))
    code, out, err = cli("report", root)
    assert code == 0, err
    assert "| dkd | 3 | " in out and "| 3 | -0.30 (all differences equal: no interval) |" in out
    assert report_csv(root)["dkd"][f"{PAIR} | gain_kd_last_excludes_0"] == ""
    (gains,) = [f for f in saved_figures if "gain over the vanilla student" in title(f)]
    assert len(drawn_error_bars(gains)) == 2 and all(length > 0 for length in drawn_error_bars(gains))


def test_one_pair_says_n_1():
    assert Gain("fitnet", PAIR, "vanilla", "last", seeds=[0], diffs=[2.0]).cell() == "+2.00 (n=1: no interval)"


def test_tables_and_plots_state_the_training_budget(cli, tmp_path, saved_figures):  # noqa: F811
    """Today a `--budget 1` grid and a 4-epoch grid give the same titles."""
    titles = {}
    for epochs in (1, 4):
        root = small_grid(tmp_path / f"budget{epochs}" / "small", epochs=epochs)
        saved_figures.clear()
        code, out, err = cli("report", root)
        assert code == 0, err
        plots = [title(figure) for figure in saved_figures]
        titles[epochs] = out.splitlines()[0], plots
    assert titles[1][0] == "## small: fashion_mnist, trained 1 epoch (teacher 8 epochs): test top-1 (%), last epoch"
    assert titles[4][0] == "## small: fashion_mnist, trained 4 epochs (teacher 8 epochs): test top-1 (%), last epoch"
    for epochs, text in ((1, "trained 1 epoch (teacher 8 epochs)"), (4, "trained 4 epochs (teacher 8 epochs)")):
        assert len(titles[epochs][1]) == 3 and all(text in t for t in titles[epochs][1]), titles[epochs][1]


def test_a_table_of_runs_trained_for_different_budgets_says_so_and_names_init_stages(cli, tmp_path):
    root = tmp_path / "mixed"
    for name, epochs in (("vanilla", 2), ("kd", 4)):
        fake_run(root, name, seed=0, best=70.0, last=70.0, method=None if name == "vanilla" else name,
                 teacher_arch=None if name == "vanilla" else "resnet20", config={"epochs": epochs}, **SMALL)
    ft = fake_run(root, "ft", seed=0, best=71.0, last=71.0, method="ft", teacher_arch="resnet20",
                  config={"epochs": 4}, **SMALL)
    summary = json.loads((ft / "summary.json").read_text())
    (ft / "summary.json").write_text(json.dumps({**summary, "init_epochs": 1}))
    code, out, err = cli("report", root, "--no-plots")
    assert code == 0, err
    assert out.startswith("## mixed: fashion_mnist, trained 2 or 4 epochs (the runs differ; init stage: ft 1 epoch): ")


def test_the_cell_legend_has_three_dots_and_counts_runs_in_words(cli, tmp_path):
    root = small_grid(tmp_path / "small", seeds=(0,))
    code, out, err = cli("report", root, "--no-plots")
    assert code == 0, err
    assert "n=...." not in out and "Cell: mean ± std over 1 run (seed) unless marked (n=N).\n" in out
    code, out, _ = cli("report", small_grid(tmp_path / "two"), "--no-plots")
    assert "Cell: mean ± std over 2 runs (seeds) unless marked (n=N).\n" in out


def test_the_cost_plot_says_what_orders_its_points(cli, tmp_path, saved_figures):  # noqa: F811
    code, _, err = cli("report", small_grid(tmp_path / "small"))
    assert code == 0, err
    (cost,) = [f for f in saved_figures if "training cost" in title(f)]
    assert cost.axes[0].get_xlabel() == "training time (s, mean over seeds, init stage included): cheaper to the left"
    (gains,) = [f for f in saved_figures if "gain over" in title(f)]
    assert gains.axes[0].get_xlabel() == "method, in the report's row order"


@pytest.mark.parametrize("count, text", [(1, "1 epoch"), (0, "0 epochs"), (4, "4 epochs"), (1.0, "1 epoch"),
                                         (2.5, "2.5 epochs"), (10**6, "1000000 epochs")])
def test_plural(count, text):
    assert plural(count, "epoch") == text


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> tuple[Path, str]:
    """`kdzoo train` for 1 epoch on a 2-class synthetic dataset: its run folder and what it printed."""
    out = tmp_path_factory.mktemp("plain")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", "--model", "resnet8", *TINY, "--dataset-opt", "num_classes=2", "--epochs", "1",
                     "--output-dir", str(out), "--name", "plain"]) == 0
    return out / "plain", printed.getvalue()


@pytest.mark.slow
def test_the_run_header_says_1_epoch(plain_run):
    """Today: "..., 1 epochs, lr ..."."""
    header = plain_run[1].splitlines()[0]
    assert "), 1 epoch, lr " in header and "1 epochs" not in plain_run[1], header


@pytest.mark.slow
def test_plain_training_prints_no_teacher_in_its_speed_line(plain_run):
    """Today: "teacher under inference_mode" for a run without a teacher."""
    speed = next(line for line in plain_run[1].splitlines() if line.startswith("speed:"))
    assert speed.endswith("for-loop optimizer step") and "teacher" not in speed, speed


@pytest.mark.slow
def test_two_classes_print_and_summarise_no_top5(cli, plain_run):
    """Today top-5 = 100 % (every label is among 2 logits) in summary.json and `kdzoo eval`; metrics.csv keeps its
    test_top5 column (every run folder has the same columns for resume, report and plot)."""
    run_dir = plain_run[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "best_top5" not in summary and "last_top5" not in summary and "last_top1" in summary
    with open(run_dir / "metrics.csv", newline="") as f:
        assert "test_top5" in next(csv.reader(f))
    code, out, err = cli("eval", run_dir / "checkpoint_best.pt", "--device", "cpu")
    assert code == 0, err
    assert "top-1 " in out and "top-5" not in out


def test_the_bench_dry_run_says_1_epoch(cli, tmp_path):
    """Today: "teacher_resnet14_seed0: new, 1 epochs"."""
    code, out, err = cli("bench", "--grid", write_grid(tmp_path), "--out", tmp_path / "grid", "--dry-run")
    assert code == 0, err
    assert "teacher_resnet14_seed0: new, 1 epoch\n" in out and "1 epochs" not in out


def test_ten_classes_keep_top5(cli, tmp_path):
    code, out, err = cli("train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "ten")
    assert code == 0, err
    assert {"best_top5", "last_top5"} <= set(json.loads((tmp_path / "ten" / "summary.json").read_text()))
    code, out, err = cli("eval", tmp_path / "ten" / "checkpoint_best.pt", "--device", "cpu")
    assert code == 0, err
    assert "top-5 " in out


def test_after_make_demo_the_demo_says_how_to_get_the_kdzoo_command(monkeypatch, tmp_path):
    """`make demo` runs .venv/bin/kdzoo with the virtual environment not activated: the next `kdzoo ...` of the README
    and the tutorial says "command not found" unless the demo says how to get it."""
    scripts = Path(sysconfig.get_path("scripts"))
    monkeypatch.chdir(scripts.parent.parent)  # the folder that holds the virtual environment, where `make demo` runs
    monkeypatch.setenv("PATH", str(tmp_path))  # a shell that finds no kdzoo
    hint = command_hint()
    where = scripts.relative_to(scripts.parent.parent)  # .venv/bin
    assert "not on your PATH" in hint and f"`{where / 'kdzoo'}`" in hint
    if sys.prefix != sys.base_prefix:  # a virtual environment, as `make demo` makes
        assert f"`source {where / 'activate'}`" in hint
    if (scripts / "kdzoo").exists():
        monkeypatch.setenv("PATH", str(scripts))  # activated: `kdzoo` is this installation's
        assert command_hint() is None


def test_the_demo_ends_with_the_hint(monkeypatch, tmp_path, capsys):
    """The demo's output ends with the hint (its three runs replaced by finished run folders: no training here)."""
    from kdzoo.commands import demo
    from kdzoo.grid import runner

    def finished(run_dir, cfg):
        run = fake_run(run_dir.parent, run_dir.name, model=cfg.model, seed=0, best=80.0, last=79.0,
                       dataset="fashion_mnist")
        return json.loads((run / "summary.json").read_text())

    monkeypatch.setattr(runner, "run_in_process", finished)
    monkeypatch.setenv("PATH", str(tmp_path))
    demo.run_demo(output_dir=str(tmp_path / "demo"), quick=True)
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last == command_hint() and "not on your PATH" in last


ROOT = Path(__file__).resolve().parents[1]
#: The pages whose commands a new user types after `make demo`.
FIRST_PAGES = ("README.md", "README.zh-CN.md", "docs/tutorial.md", "docs/zh-CN/tutorial.md")


@pytest.mark.parametrize("page", FIRST_PAGES)
def test_the_pages_say_how_to_get_the_kdzoo_command_before_their_first_kdzoo_command(page):
    """Today `make demo` is followed by `kdzoo ...` blocks that give "command not found"."""
    text = (ROOT / page).read_text(encoding="utf-8")
    first = next(block for block in re.finditer(r"```(?:sh|bash)\n(.*?)```", text, re.S)
                 if re.search(r"^kdzoo ", block.group(1), re.M))
    before = text[:first.start()]
    assert all(s in before for s in ("`source .venv/bin/activate`", "`.venv\\Scripts\\activate`", "`.venv/bin/kdzoo`"))


@pytest.mark.parametrize("page", FIRST_PAGES[:2])
def test_the_readme_keeps_two_set_up_commands(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    setup = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in setup.splitlines()] == ["make demo", "make test"]


#: What each time claim of the pages looks like, the pages that must make it, and the minutes measured on an idle
#: 2-core CPU (issue 32: `make demo` 4:57 from a fresh clone, `make test` 5:36, the small grid 4:10).
CLAIMS = {
    "make demo": (r"`make demo`[^`。]*?(?:about |大约要? )(\d+) ?(?:minutes|分钟)", 3, "5"),
    "make test": (r"`make test`[^`。]*?(?:about |大约要? )(\d+) ?(?:minutes|分钟)", 2, "8"),
    "bench/fashion_mnist_small": (r"fashion_mnist_small[^。]*?(?:~|about |约 )(\d+) ?(?:min|分钟)", 6, "4"),
}


@pytest.mark.parametrize("claim", CLAIMS)
def test_every_page_states_the_measured_time(claim):
    """Today the READMEs say about 4 minutes for `make demo` and ~10 for the small grid, as its grid file does."""
    pattern, pages, minutes = CLAIMS[claim]
    stated = {}
    for page in [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").rglob("*.md")),
                 ROOT / "src/kdzoo/configs/bench/fashion_mnist_small.yaml"]:
        found = re.findall(pattern, page.read_text(encoding="utf-8"))
        if found:
            stated[page.relative_to(ROOT).as_posix()] = found
    assert len(stated) >= pages and all(set(v) == {minutes} for v in stated.values()), stated
