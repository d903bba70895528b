"""docs/results.md and the README's excerpt of it (kdzoo.docgen.results): the excerpt is the measured table's
teacher, vanilla and best rows, cell for cell, in README.md and README.zh-CN.md, and the page holds the report as
`kdzoo report` wrote it."""

import json
import re
from pathlib import Path

import pytest

from kdzoo.docgen.results import (
    BEGIN,
    END,
    FULL_EPOCHS,
    FULL_TRAIN,
    GRID,
    cost_speeds,
    first_table,
    full_grid_days,
    readme_excerpt,
    readme_excerpt_zh,
    regenerate,
    top_rows,
    with_excerpt,
)
from kdzoo.errors import KdzooError

ROOT = Path(__file__).resolve().parents[1]

REPORT = """## grid: fashion_mnist (2000 train / 2000 test images, data seed 0) test top-1 (%), last epoch

| method | a -> b | c -> b |
|---|---|---|
| teacher | 80.00 ± 0.00 | 82.00 ± 0.00 |
| vanilla | 70.00 ± 1.00 | 70.00 ± 1.00 |
| ab | 79.00 ± 0.50 | – |
| kd | 74.00 ± 0.10 | 75.00 ± 0.20 |
| dkd | 76.00 ± 0.30 | 73.00 ± 0.40 |

### Training cost

| method | a -> b | c -> b |
|---|---|---|
| teacher | 10 s, 100 img/s | 20 s, 50 img/s |
| vanilla | 5 s, 400 img/s | 5 s, 400 img/s |
| ab | 9 s (4 s init), 200 img/s | – |
"""


def test_the_first_table_is_the_accuracy_table():
    table = first_table(REPORT)
    assert table[0] == ["method", "a -> b", "c -> b"]
    assert [row[0] for row in table[1:]] == ["teacher", "vanilla", "ab", "kd", "dkd"]
    assert table[3] == ["ab", "79.00 ± 0.50", "–"]


def test_the_larger_grid_is_estimated_from_the_measured_images_per_second():
    assert cost_speeds(REPORT) == {"teacher": [100.0, 50.0], "vanilla": [400.0, 400.0], "ab": [200.0]}
    student_s = FULL_EPOCHS * FULL_TRAIN * (1 / 400 + 1 / 400 + 1 / 200) / 3   # per student run
    teacher_s = 10 * FULL_TRAIN * (1 / 100 + 1 / 50) / 2                        # per teacher run, 10 epochs
    assert full_grid_days(REPORT, 4, 1, 10) == pytest.approx((4 * student_s + teacher_s) / 86400)


def test_the_results_page_states_the_estimate_of_its_own_numbers():
    """docs/results.md's time for the larger grid is full_grid_days of the page's own report and run counts."""
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    teachers, students = map(int, re.search(r"\d+ runs \((\d+) teachers, (\d+) students\)", page).groups())
    teacher_epochs = int(re.search(r"each teacher trains (\d+) epochs", page).group(1))
    report = page[page.index("\n## "):]
    days = full_grid_days(report, students, teachers, teacher_epochs)
    assert days > 2 and f"(about {days:.0f} days on the same 2-core CPU" in page  # not "hours"
    assert f"kdzoo bench --grid {GRID} --budget {FULL_EPOCHS} --set train_subset={FULL_TRAIN} " in page


def test_top_rows_keep_teacher_and_vanilla_then_rank_methods_by_mean_top1():
    rows = top_rows(first_table(REPORT), 3)
    # kd 74.5 and dkd 74.5 (both pairs) before ab 79 (one pair)
    assert [row[0] for row in rows] == ["method", "teacher", "vanilla", "kd", "dkd", "ab"]
    assert rows[3] == ["kd", "74.00 ± 0.10", "75.00 ± 0.20"]  # cells as printed


def test_the_excerpt_replaces_only_what_is_between_the_markers():
    readme = f"intro\n{BEGIN}\nold table\n{END}\nrest\n"
    new = with_excerpt(readme, readme_excerpt(first_table(REPORT)))
    assert new.startswith("intro\n" + BEGIN) and new.endswith(END + "\nrest\n")
    assert "old table" not in new and "| kd | 74.00 ± 0.10 | 75.00 ± 0.20 |" in new
    assert "all 3 methods" in new
    with pytest.raises(KdzooError, match="markers"):
        with_excerpt("no markers", "x")


def test_regenerate_writes_the_page_the_plot_and_the_excerpt(tmp_path):
    runs = tmp_path / "runs"
    for name, epochs in (("teacher_a_seed0", 10), ("a-b_kd_seed0", 2), ("vanilla_b_seed0", 2)):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.yaml").write_text("batch_size: 64\n")
        summary = {"run": name, "kind": "train", "epochs": epochs, "train_subset": 2000, "test_subset": 2000,
                   "seed": 0}
        (runs / name / "summary.json").write_text(json.dumps(summary))
    (runs / "report.md").write_text(REPORT, encoding="utf-8")
    (runs / "plots").mkdir()
    (runs / "plots" / "gains_x.png").write_bytes(b"png")
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n", encoding="utf-8")
    chinese = tmp_path / "README.zh-CN.md"
    chinese.write_text(f"中文\n{BEGIN}\n旧表\n{END}\n", encoding="utf-8")
    regenerate(runs, tmp_path / "results.md", tmp_path / "img", readme)
    page = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert REPORT.strip() in page
    assert "3 runs (1 teachers, 2 students)" in page
    assert "trains 2 epochs on 2000 training images (64 SGD steps of 64)" in page
    assert "reaches 1 points" in page and "days on the same 2-core CPU" in page
    assert (tmp_path / "img" / "results_gains.png").read_bytes() == b"png"
    assert "| dkd | 76.00 ± 0.30 | 73.00 ± 0.40 |" in readme.read_text(encoding="utf-8")
    zh = chinese.read_text(encoding="utf-8")
    assert "| dkd | 76.00 ± 0.30 | 73.00 ± 0.40 |" in zh and "| 教师 |" in zh and "旧表" not in zh


def test_regenerate_without_a_report_says_to_run_kdzoo_report(tmp_path):
    with pytest.raises(KdzooError, match="kdzoo report"):
        regenerate(tmp_path, tmp_path / "results.md", tmp_path / "img", tmp_path / "README.md")


def test_the_readme_excerpt_is_the_results_page_table():
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    excerpt = readme[readme.index(BEGIN):readme.index(END) + len(END)]
    assert excerpt == readme_excerpt(first_table(page))
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert chinese[chinese.index(BEGIN):chinese.index(END) + len(END)] == readme_excerpt_zh(first_table(page))
