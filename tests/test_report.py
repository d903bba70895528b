"""`kdzoo report`: the table's numbers are the runs' summary.json numbers, published numbers sit beside
matching cells, and the plots are valid PNGs."""

import csv
import json
import statistics

import pytest
import yaml
from matplotlib.image import imread

from kdzoo.errors import ConfigError
from kdzoo.grid.records import write_info
from kdzoo.methods import list_methods
from kdzoo.models import list_models
from kdzoo.published import published_tables, select_tables

PNG = b"\x89PNG\r\n\x1a\n"


def fake_run(root, name, *, model, seed, best, last, method=None, teacher_arch=None, dataset="cifar100",
             info=None, config=None, stats=None, teacher_top1=None, time_s=100.0):
    """A finished run folder as the engine writes it (summary.json, config.yaml, metrics.csv)."""
    run = root / name
    run.mkdir(parents=True)
    summary = {"run": name, "run_dir": str(run), "kind": "distill" if method else "train", "model": model,
               "dataset": dataset, "method": method,
               "teacher": f"teachers/{teacher_arch}.pth" if teacher_arch else None,
               "teacher_arch": teacher_arch, "teacher_top1": teacher_top1, "seed": seed, "epochs": 2,
               "best_top1": best, "best_epoch": 1, "last_top1": last, "train_time_s": time_s,
               "images_per_s": 1000.0 + seed}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.yaml").write_text(yaml.safe_dump({"model": model, "method": method, "seed": seed, "dataset": dataset,
                                                     **(config or {})}))
    rows = [{"epoch": e, "test_top1": v, **{f"stat_{k}": s[e - 1] for k, s in (stats or {}).items()}}
            for e, v in ((1, best), (2, last))]
    with open(run / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if info:
        write_info(run, info)
    return run


@pytest.fixture
def runs(tmp_path):
    """Hand-made runs on resnet32x4 -> resnet8x4 (a teacher file), two seeds each, plus a T ablation."""
    root = tmp_path / "runs"
    for seed, (v, k, c, ls) in enumerate([(72.0, 73.0, 75.0, 76.0), (73.0, 74.0, 75.5, 77.0)]):
        fake_run(root, f"vanilla{seed}", model="resnet8x4", seed=seed, best=v + 0.5, last=v)
        fake_run(root, f"kd{seed}", model="resnet8x4", seed=seed, best=k + 0.5, last=k, method="kd",
                 teacher_arch="resnet32x4", teacher_top1=79.0, config={"t_student": 4.0, "t_teacher": 4.0},
                 time_s=200.0)
        fake_run(root, f"ctkd{seed}", model="resnet8x4", seed=seed, best=c + 0.5, last=c, method="ctkd",
                 teacher_arch="resnet32x4", teacher_top1=79.0, stats={"temperature": [3.0, 5.0]})
        fake_run(root, f"kdls{seed}", model="resnet8x4", seed=seed, best=ls + 0.5, last=ls, method="kd",
                 teacher_arch="resnet32x4", teacher_top1=79.0, config={"logit_std": True})
        fake_run(root, f"kdT1_{seed}", model="resnet8x4", seed=seed, best=70.0 + seed, last=70.0 + seed, method="kd",
                 teacher_arch="resnet32x4", teacher_top1=79.0, config={"t_student": 1.0, "t_teacher": 1.0},
                 info={"role": "distill", "label": "kd T=1", "variant": "kd", "pair": ["resnet32x4", "resnet8x4"],
                       "order": [2, 0]})
    (root / "killed").mkdir()
    (root / "killed" / "config.yaml").write_text("model: resnet8x4\n")
    return root


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {row["method"]: row for row in csv.DictReader(f)}


def test_report_numbers_equal_the_summaries(cli, runs):
    code, out, err = cli("report", runs)
    assert code == 0, err
    pair = "resnet32x4 -> resnet8x4"
    rows = read_csv(runs / "report.csv")
    assert set(rows) == {"teacher", "vanilla", "kd", "ctkd", "kd+ls", "kd T=1"}
    for method, names in {"vanilla": ["vanilla0", "vanilla1"], "kd": ["kd0", "kd1"],
                          "kd+ls": ["kdls0", "kdls1"]}.items():
        summaries = [json.loads((runs / n / "summary.json").read_text()) for n in names]
        for metric in ("best", "last"):
            values = [s[f"{metric}_top1"] for s in summaries]
            assert float(rows[method][f"{pair} | {metric}_mean"]) == pytest.approx(statistics.fmean(values))
            assert float(rows[method][f"{pair} | {metric}_std"]) == pytest.approx(statistics.stdev(values))
        assert float(rows[method][f"{pair} | train_time_s"]) == pytest.approx(
            statistics.fmean(s["train_time_s"] for s in summaries))
        assert float(rows[method][f"{pair} | images_per_s"]) == pytest.approx(1000.5)
    # measured before distilling
    assert rows["teacher"][f"{pair} | last_mean"] == "79.0" and rows["teacher"][f"{pair} | n"] == "1"
    # RepDistiller's published KD number (last epoch) beside ours, and the difference
    assert rows["kd"][f"{pair} | published"] == "73.33"
    assert rows["kd"][f"{pair} | published_table"] == "repdistiller_same_family"
    assert float(rows["kd"][f"{pair} | diff_last"]) == pytest.approx(73.5 - 73.33)
    assert rows["kd+ls"][f"{pair} | published"] == "76.62" and rows["ctkd"][f"{pair} | published"] == "73.39"
    assert "| kd | 73.50 ± 0.71 (73.33, +0.17) |" in out
    assert "| vanilla | 72.50 ± 0.71 (72.50, +0.00) |" in out
    assert "| teacher | 79.00 (79.42, -0.42) (n=1) |" in out
    assert "unless marked (n=N); in brackets the published number and our difference.\n" in out
    assert "init stage" not in out  # no init stage ran, so no time in brackets
    assert "200 s, 1000 img/s" in out and "repdistiller_same_family: RepDistiller" in out
    assert "1 unfinished run left out: killed" in out
    title = (runs / "report.md").read_text(encoding="utf-8").splitlines()[0]
    assert title == "## runs: cifar100, trained 2 epochs: test top-1 (%), last epoch"


def test_report_metric_and_published_options(cli, runs, tmp_path):
    code, out, err = cli("report", runs, "--metric", "best", "--published", "none", "--out", tmp_path / "rep",
                         "--no-plots")
    assert code == 0, err
    assert "| kd | 74.00 ± 0.71 |" in out and "(73.33" not in out
    assert "unless marked (n=N).\n" in out and "in brackets" not in out  # the header promises only what is printed
    assert not (tmp_path / "rep" / "plots").exists() and (tmp_path / "rep" / "report.csv").exists()
    code, _, err = cli("report", runs, "--published", "repdistiller_typo")
    assert code == 2 and "Unknown published table 'repdistiller_typo'" in err
    code, _, err = cli("report", tmp_path / "nothing-here")
    assert code == 2 and "is not a folder" in err


def test_plots_are_valid_pngs(cli, runs):
    assert cli("report", runs)[0] == 0
    plots = runs / "plots"
    expected = {"curves_cifar100_resnet32x4-resnet8x4.png", "gains_cifar100.png", "cost_cifar100.png",
                "temperature_cifar100.png", "stat_temperature_cifar100.png"}
    assert {p.name for p in plots.iterdir()} == expected
    for name in expected:
        assert (plots / name).read_bytes().startswith(PNG)
        assert imread(plots / name).shape[0] > 100


def test_no_cost_leaves_the_cost_table_and_plot_out(cli, runs, tmp_path):
    code, out, err = cli("report", runs, "--no-cost", "--out", tmp_path / "rep")
    assert code == 0, err
    assert "Training cost" not in out and "img/s" not in out and "| kd | 73.50 ± 0.71" in out
    assert not list((tmp_path / "rep" / "plots").glob("cost_*")) and list((tmp_path / "rep" / "plots").glob("gains_*"))
    assert "train_time_s" in (tmp_path / "rep" / "report.csv").read_text(encoding="utf-8")  # the CSV keeps the times


def test_published_tables_name_known_methods_models_and_sources():
    methods = set(list_methods()) | {"teacher", "vanilla"}
    for table in published_tables().values():
        assert table.source and table.metric in ("best", "last") and table.dataset == "cifar100"
        for row, pair in table.values:
            assert row.split("+")[0] in methods, row
            teacher, student = pair.split(" -> ")
            assert teacher in list_models() and student in list_models(), pair
    assert select_tables("none") == [] and len(select_tables(None)) == len(published_tables())
    with pytest.raises(ConfigError, match=r"Unknown published table 'nope': use all, none, or some of "):
        select_tables("nope")


def test_rows_marked_last_epoch_are_repdistillers_last_epoch_numbers():
    """A best-epoch table's teacher and vanilla rows reprinted from RepDistiller (a network trained alone, one run,
    last epoch) carry RepDistiller's metric; the other teacher and vanilla rows of best-epoch tables are their own."""
    def alone(row, pair):  # the network a teacher or vanilla row trained alone
        return pair.split(" -> ")[0 if row == "teacher" else 1]

    tables = published_tables()
    repdistiller = {alone(row, pair): v for t in tables.values() if t.metric == "last"
                    for (row, pair), v in t.values.items() if row in ("teacher", "vanilla")}
    assert any(t.row_metrics for t in tables.values())
    for table in tables.values():
        assert set(table.row_metrics.values()) <= {"best", "last"} and set(table.row_metrics) <= {"teacher", "vanilla"}
        for (row, pair), value in table.values.items():
            if table.metric == "best" and row in ("teacher", "vanilla"):
                reprinted = repdistiller.get(alone(row, pair)) == value
                assert reprinted == (table.metric_of(row) == "last"), (table.name, row, pair)


def test_runs_that_saw_other_images_are_not_pooled(cli, tmp_path):
    root = tmp_path / "runs"
    subsets = {"train_subset": 4000, "test_subset": 1000}
    for seed in (0, 1):
        fake_run(root, f"kd{seed}", model="resnet8", seed=seed, best=80.0 + seed, last=80.0 + seed, method="kd",
                 teacher_arch="resnet20", dataset="fashion_mnist", config={**subsets, "data_seed": 0})
        # saved before --data-seed existed: its subsets were drawn from its run seed
        fake_run(root, f"dkd{seed}", model="resnet8", seed=seed, best=70.0 + seed, last=70.0 + seed, method="dkd",
                 teacher_arch="resnet20", dataset="fashion_mnist", config=subsets)
    code, out, err = cli("report", root)
    assert code == 0, err
    assert out.startswith("Note: the fashion_mnist runs saw 2 different sets of images")
    first, second = out.split("## runs: fashion_mnist (4000 train / 1000 test images, data seed ")[1:]
    assert first.startswith("0), trained 2 epochs: test top-1 (%)") and second.startswith("1), trained 2 epochs: test")
    assert "| kd | 80.50 ± 0.71 (n=2) |" in first and "| dkd | 70.00 |" in first  # data seed 0: pooled
    assert "| dkd | 71.00 |" in second and "| kd |" not in second  # the old seed-1 run drew other subsets
    with open(root / "report.csv", newline="", encoding="utf-8") as f:
        rows = [(r["data_seed"], r["method"], r["resnet20 -> resnet8 | n"]) for r in csv.DictReader(f)]
    assert sorted(rows) == [("0", "dkd", "1"), ("0", "kd", "2"), ("1", "dkd", "1")]
    plots = {p.name for p in (root / "plots").iterdir()}
    assert "curves_fashion_mnist_train4000_test1000_data1_resnet20-resnet8.png" in plots


def test_runs_pool_only_when_they_differ_in_the_seed_alone(cli, tmp_path):
    root = tmp_path / "runs"
    for name, seed, epochs, top1 in (("a", 0, 3, 60.0), ("b", 0, 6, 70.0), ("c", 1, 6, 72.0)):
        fake_run(root, name, model="resnet8", seed=seed, best=top1, last=top1, method="kd", teacher_arch="resnet20",
                 dataset="fashion_mnist", config={"epochs": epochs})
    code, out, err = cli("report", root, "--no-plots")
    assert code == 0, err
    rows = read_csv(root / "report.csv")
    assert set(rows) == {"kd (epochs=3)", "kd (epochs=6)"}
    assert rows["kd (epochs=6)"]["resnet20 -> resnet8 | n"] == "2"
    assert rows["kd (epochs=3)"]["resnet20 -> resnet8 | n"] == "1"
    assert "| kd (epochs=6) | 71.00 ± 1.41" in out and "| kd (epochs=3) | 60.00" in out


def test_a_row_named_by_a_weight_left_at_the_methods_default_says_default(cli, tmp_path):
    root = tmp_path / "runs"
    for name, alpha in (("crd", None), ("crd_kd", 1.0)):  # as `--method crd` and `--method crd --alpha 1` save it
        fake_run(root, name, model="resnet8", seed=0, best=70.0, last=70.0, method="crd", teacher_arch="resnet20",
                 dataset="fashion_mnist", config={"alpha": alpha})
    code, out, err = cli("report", root, "--no-plots")
    assert code == 0, err
    assert set(read_csv(root / "report.csv")) == {"crd (alpha=default)", "crd (alpha=1.0)"}


def test_the_cost_table_counts_the_init_stage(cli, tmp_path):
    root = tmp_path / "runs"
    run = fake_run(root, "ft", model="resnet8", seed=0, best=60.0, last=60.0, method="ft", teacher_arch="resnet20",
                   dataset="fashion_mnist", time_s=120.0)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "init_time_s": 100.0}))
    code, out, err = cli("report", root, "--no-plots")
    assert code == 0, err
    assert "120 s (100 s init), 1000 img/s" in out and "init stage of AB, FT and FSP, shown in brackets" in out
    assert "in brackets the published number" not in out  # no published Fashion-MNIST numbers
    assert read_csv(root / "report.csv")["ft"]["resnet20 -> resnet8 | init_time_s"] == "100.0"


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures the plots write, kept open after saving for the test to look at."""
    from kdzoo import plots

    figures, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    return figures


def visible_xticks(fig) -> list[float]:
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if low <= t <= high]


def test_every_report_plot_title_fits_its_figure(cli, tmp_path, saved_figures):
    root = tmp_path / "runs"
    long = {"train_subset": 4000, "test_subset": 1000, "data_seed": 0}  # the tutorial's runs, longer names
    pair = ("torchvision/efficientnet_b0", "torchvision/mobilenet_v3_small")
    for seed in (0, 1):
        fake_run(root, f"vanilla{seed}", model=pair[1], seed=seed, best=70.0, last=69.0, dataset="fashion_mnist",
                 config=long)
        for t in (1.0, 4.0):
            fake_run(root, f"ctkd{seed}_{t:g}", model=pair[1], seed=seed, best=72.0 + t, last=71.0, method="ctkd",
                     teacher_arch=pair[0], dataset="fashion_mnist", stats={"temperature": [3.0, 5.0]},
                     config={**long, "t_student": t, "t_teacher": t}, time_s=10.0)
    code, _, err = cli("report", root)
    assert code == 0, err
    titles = [ax.title for fig in saved_figures for ax in fig.axes if ax.title.get_text()]
    assert len(titles) == 5 and any(len(t.get_text()) > 100 for t in titles)  # curves, gains, cost, T, stat
    for fig in saved_figures:
        fig.canvas.draw()
        for ax in fig.axes:
            box = ax.title.get_window_extent()
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, ax.title.get_text()


@pytest.mark.parametrize("epochs, ticks", [([1], [1.0]), ([1, 2], [1.0, 2.0]), ([3, 4, 5], [3.0, 4.0, 5.0]),
                                           (list(range(1, 241)), [0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0,
                                                                  210.0, 240.0])])
def test_epoch_axes_tick_whole_epochs(tmp_path, saved_figures, epochs, ticks):
    from kdzoo.plots import plot_lines

    plot_lines({"run": (epochs, [50.0] * len(epochs), None)}, tmp_path / "p.png", "epoch", "top-1", "t")
    assert visible_xticks(saved_figures[0]) == ticks
