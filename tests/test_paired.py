"""`kdzoo report`'s paired gains: t quantiles, pairing by seed and settings, the marks, the CSV columns, the plot's
intervals, and a real grid's report."""

import csv
import json
import math
import statistics

import pytest
import yaml

from kdzoo.grid.paired import Gain, paired_gains, t_quantile_975
from kdzoo.grid.records import load_records
from kdzoo.grid.tables import build_tables
from test_bench import write_grid
from test_report import fake_run

PAIR = "resnet20 -> resnet8"


@pytest.mark.parametrize("df, t", [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042), (31, 2.040),
                                   (40, 2.021), (60, 2.000), (120, 1.980), (10**6, 1.960)])
def test_t_quantiles(df, t):
    assert t_quantile_975(df) == pytest.approx(t, abs=6e-4)


def test_t_quantiles_are_exact_not_a_three_decimal_table():
    """t_{0.975, 4} is 2.7764451 (the old table said 2.776, a half-width off by 1.6e-4 of itself)."""
    assert t_quantile_975(4) == pytest.approx(2.7764451052, abs=1e-9)
    assert t_quantile_975(35) == pytest.approx(2.0301079282, abs=1e-9)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_gain_interval_and_mark():
    steady = Gain("kd", PAIR, "vanilla", "last", seeds=[0, 1, 2], diffs=[1.1, 0.9, 1.0])
    sd = statistics.stdev(steady.diffs)
    assert steady.mean == pytest.approx(1.0) and steady.half_width == pytest.approx(4.3026527299 * sd / math.sqrt(3))
    assert steady.excludes_zero and steady.cell() == "+1.00 [+0.75, +1.25] *"
    noisy = Gain("dkd", PAIR, "vanilla", "last", seeds=[0, 1, 2], diffs=[3.0, -2.0, 0.5])
    assert noisy.excludes_zero is False and not noisy.cell().endswith("*")
    below = Gain("at", PAIR, "vanilla", "last", seeds=[0, 1, 2], diffs=[-2.0, -2.2, -2.1])
    assert below.excludes_zero and below.cell().endswith("*")
    one = Gain("at", PAIR, "vanilla", "last", seeds=[0], diffs=[2.0])
    assert one.interval is None and one.excludes_zero is None and one.cell() == "+2.00 (n=1: no interval)"
    assert Gain("at", PAIR, "kd", "last").cell() == "–"


VANILLA = [70.0, 75.0, 80.0]   # seeds far apart: mean ± std hides a steady gain of 1 point


@pytest.fixture
def hand_made(tmp_path):
    """Three seeds of vanilla, KD (vanilla + 1, steady), DKD (noisy), CTKD (one seed without a vanilla partner),
    FitNet (one seed)."""
    root = tmp_path / "runs"
    kw = {"model": "resnet8", "dataset": "fashion_mnist"}
    for seed, v in enumerate(VANILLA):
        fake_run(root, f"vanilla{seed}", seed=seed, best=v, last=v, **kw)
        fake_run(root, f"kd{seed}", seed=seed, best=v + 1.0 + 0.1 * (seed - 1), last=v + 1.0 + 0.1 * (seed - 1),
                 method="kd", teacher_arch="resnet20", **kw)
        fake_run(root, f"dkd{seed}", seed=seed, best=v + [3.0, -2.0, 0.5][seed], last=v + [3.0, -2.0, 0.5][seed],
                 method="dkd", teacher_arch="resnet20", **kw)
        fake_run(root, f"ctkd{seed}", seed=seed + 1, best=v + 2.0, last=v + 2.0, method="ctkd", teacher_arch="resnet20",
                 **kw)
    fake_run(root, "fitnet0", seed=0, best=72.0, last=72.0, method="fitnet", teacher_arch="resnet20", **kw)
    return root


def gains_of(root, metric="last"):
    records, _ = load_records(root)
    (table,) = build_tables(records)
    return paired_gains(table, metric)


def test_runs_pair_by_seed(hand_made):
    gains = gains_of(hand_made)
    kd = gains[("kd", PAIR, "vanilla")]
    assert kd.seeds == [0, 1, 2] and kd.diffs == pytest.approx([0.9, 1.0, 1.1]) and kd.excludes_zero
    # unpaired, the same runs' means differ by 1 point with a spread of 5: mean ± std would hide it
    assert statistics.stdev(VANILLA) == 5.0
    dkd = gains[("dkd", PAIR, "vanilla")]
    assert dkd.diffs == pytest.approx([3.0, -2.0, 0.5]) and dkd.excludes_zero is False
    assert gains[("dkd", PAIR, "kd")].diffs == pytest.approx([2.1, -3.0, -0.6])
    ctkd = gains[("ctkd", PAIR, "vanilla")]  # seeds 1, 2, 3: seed 3 has no vanilla run
    assert ctkd.seeds == [1, 2] and ctkd.missing == [3] and ctkd.diffs == pytest.approx([2.0 - 5.0, 2.0 - 5.0])
    assert ctkd.notes()[0] == "ctkd: no run of the vanilla student for seed 3 (not paired)"
    assert gains[("fitnet", PAIR, "vanilla")].n == 1
    assert ("kd", PAIR, "kd") not in gains and ("vanilla", PAIR, "vanilla") not in gains


def test_partners_share_every_setting_but_the_method(tmp_path):
    """A run pairs with the vanilla run of its seed trained as long (not with one of other epochs); two possible
    partners are ambiguous: not paired, noted; a DOT run pairs with the SGD vanilla run."""
    root = tmp_path / "runs"
    kw = {"model": "resnet8", "dataset": "fashion_mnist"}
    for epochs, top1 in ((2, 50.0), (4, 60.0)):
        fake_run(root, f"vanilla_e{epochs}", seed=0, best=top1, last=top1, config={"epochs": epochs}, **kw)
        fake_run(root, f"kd_e{epochs}", seed=0, best=top1 + epochs, last=top1 + epochs, method="kd",
                 teacher_arch="resnet20", config={"epochs": epochs}, **kw)
    fake_run(root, "dot_e4", seed=0, best=65.0, last=65.0, method="kd", teacher_arch="resnet20",
             config={"epochs": 4, "optimizer": "dot"}, **kw)
    fake_run(root, "vanilla_e4_again", seed=0, best=61.0, last=61.0, config={"epochs": 4, "optimizer": "sgd",
                                                                              "momentum": 0.8}, **kw)
    gains = gains_of(root)
    assert gains[("kd (epochs=2)", PAIR, "vanilla")].diffs == [2.0]
    assert gains[("kd (epochs=4)", PAIR, "vanilla")].diffs == [4.0]
    assert gains[("kd+dot", PAIR, "vanilla")].diffs == [5.0]
    assert not any(row.startswith("vanilla") for row, _, _ in gains)  # its rows split by epochs: no gains
    fake_run(root, "vanilla_e4_twice", seed=0, best=62.0, last=62.0, config={"epochs": 4}, **kw)
    ambiguous = gains_of(root)[("kd (epochs=4)", PAIR, "vanilla")]
    assert ambiguous.n == 0 and ambiguous.ambiguous == [0] and "several runs of the vanilla student" in \
        ambiguous.notes()[0]


def test_report_shows_and_writes_the_paired_gains(cli, hand_made, monkeypatch):
    from kdzoo.grid import report_plots

    drawn = {}
    monkeypatch.setattr(report_plots, "plot_grouped_bars", lambda groups, path, *a, **k: drawn.update(groups) or path)
    code, out, err = cli("report", hand_made)
    assert code == 0, err
    assert "### Paired gains over the vanilla student and over KD, last epoch" in out
    assert "t distribution with n - 1 degrees of freedom]; * marks an interval that excludes 0" in out
    assert "| method | n (vanilla) | gain over vanilla [95 % CI] | n (KD) | gain over KD [95 % CI] |" in out
    kd = Gain("kd", PAIR, "vanilla", "last", diffs=[0.9, 1.0, 1.1])
    assert f"| kd | 3 | {kd.cell()} | – | – |" in out and kd.cell().endswith(" *")
    dkd_kd = Gain("dkd", PAIR, "kd", "last", diffs=[2.1, -3.0, -0.6])
    assert f"| dkd | 3 | +0.50 [-5.71, +6.71] | 3 | {dkd_kd.cell()} |" in out and "*" not in dkd_kd.cell()
    assert "| fitnet | 1 | +2.00 (n=1: no interval) | 1 | +1.10 (n=1: no interval) |" in out
    assert "- ctkd: no run of the vanilla student for seed 3 (not paired)" in out
    with open(hand_made / "report.csv", newline="", encoding="utf-8") as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    assert rows["kd"][f"{PAIR} | gain_vanilla_n"] == "3"
    assert float(rows["kd"][f"{PAIR} | gain_vanilla_last_mean"]) == pytest.approx(1.0)
    assert float(rows["kd"][f"{PAIR} | gain_vanilla_last_ci_low"]) == pytest.approx(1.0 - kd.half_width)
    assert rows["kd"][f"{PAIR} | gain_vanilla_last_excludes_0"] == "True"
    assert rows["dkd"][f"{PAIR} | gain_vanilla_best_excludes_0"] == "False"
    assert rows["fitnet"][f"{PAIR} | gain_vanilla_last_ci_low"] == "" and rows["kd"][f"{PAIR} | gain_kd_n"] == ""
    assert rows["vanilla"][f"{PAIR} | gain_vanilla_n"] == ""
    # the gains plot: paired means, the intervals' half widths as error bars (none for one pair)
    assert drawn["kd"][PAIR] == pytest.approx((1.0, kd.half_width))
    assert drawn["fitnet"][PAIR] == (2.0, None)


def test_report_of_a_real_grid_pairs_its_seeds(cli, tmp_path):
    """`kdzoo bench` on the tiny synthetic data (vanilla, kd, dkd; two seeds), then `kdzoo report`: each gain is the
    difference of the two runs' summaries for the seed."""
    grid = write_grid(tmp_path, methods=["vanilla", "kd", "dkd"], seeds=[0, 1])
    assert cli("bench", "--grid", grid, "--out", tmp_path / "runs")[0] == 0
    code, out, err = cli("report", tmp_path / "runs", "--no-plots")
    assert code == 0, err

    def top1(name):
        return json.loads((tmp_path / "runs" / name / "summary.json").read_text())["last_top1"]

    pair = "resnet14 -> resnet8"
    for seed in (0, 1):
        assert yaml.safe_load((tmp_path / "runs" / f"vanilla_resnet8_seed{seed}" / "config.yaml").read_text())["seed"] \
            == seed
    diffs = {m: [top1(f"resnet14-resnet8_{m}_seed{s}") - top1(f"vanilla_resnet8_seed{s}") for s in (0, 1)]
             for m in ("kd", "dkd")}
    gains = gains_of(tmp_path / "runs")
    for method, expected in diffs.items():
        assert gains[(method, pair, "vanilla")].diffs == pytest.approx(expected)
        assert f"| {method} | 2 | {gains[(method, pair, 'vanilla')].cell()} |" in out
    assert gains[("dkd", pair, "kd")].n == 2 and "not paired" not in out
