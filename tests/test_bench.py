"""`kdzoo bench`: grid files, planning (names, budget, axes), and the runner: skip, resume, restart,
parallel subprocesses, failures reported at the end."""

import json

import pytest
import yaml

from conftest import kdzoo_subprocess, one_paragraph_error, wait_for
from kdzoo.config import packaged_configs
from kdzoo.engine.checkpoint import LAST
from kdzoo.grid.grid_file import grid_path, load_grid, packaged_grids
from kdzoo.grid.plan import plan
from kdzoo.grid.progress import threads_per_job
from kdzoo.grid.runner import FINISHED, RESUMABLE, run_state

COMMON = {"dataset": "synthetic", "dataset_options": {"num_train": 96, "num_test": 64}, "batch_size": 32,
          "progress": False, "tensorboard": False, "device": "cpu", "epochs": 1}


def write_grid(tmp_path, **changes):
    grid = {"common": COMMON, "teachers": "train", "teacher_training": {"epochs": 1},
            "pairs": ["resnet14 -> resnet8"], "methods": ["vanilla", "kd"], "seeds": [0], **changes}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


@pytest.mark.parametrize("change,message", [
    ({"methods": ["vanilla", "kdd"]}, "Unknown method 'kdd'"),
    ({"pairs": ["resnet14 -> resnet9"]}, "Unknown model 'resnet9'"),
    ({"methods": [{"method": "fitnet", "method_options": {"hint": 1}}]}, "has no option hint"),
    ({"teachers": "missing/{arch}_vanilla/ckpt_epoch_240.pth"},
     "The teacher for resnet14 is missing: missing/resnet14_vanilla"),
    ({"teachers": {"vgg13": "train"}}, "no teacher for 'resnet14'"),
    ({"budget": 2.5}, "budget must be a whole number"),
    ({"pairs": ["resnet14 resnet8"]}, "a pair is 'teacher -> student'"),
    ({"seed": [0]}, "unknown key 'seed'"),
    ({"common": {**COMMON, "model": "resnet8"}}, "'model' is set by the runner"),
    ({"axes": {"temprature": [1, 2]}}, "unknown option 'temprature'"),
])
def test_bad_grids_fail_before_any_run(cli, tmp_path, change, message):
    code, _, err = cli("bench", "--grid", write_grid(tmp_path, **change), "--out", tmp_path / "runs")
    one_paragraph_error(code, err)
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_plan_names_budget_axes_and_teachers(tmp_path):
    grid = load_grid(write_grid(tmp_path, pairs=["resnet14 -> resnet8", "resnet20 -> resnet8"], seeds=[0, 1],
                                methods=["vanilla", {"label": "kd+ls", "method": "kd", "alpha": 0.5},
                                         {"method": "ab", "skip_pairs": ["resnet20 -> resnet8"]}],
                                axes={"temperature": [2, 8]}, common={**COMMON, "epochs": 40, "milestones": [20, 30]}))
    jobs = plan(grid, tmp_path / "runs", budget=0.25)
    names = [j.name for j in jobs]
    assert names[:2] == ["teacher_resnet14_seed0", "teacher_resnet20_seed0"]
    # one per student, not per pair
    assert "vanilla_resnet8_seed1" in names and names.count("vanilla_resnet8_seed0") == 1
    assert "resnet20-resnet8_kd-ls_T8_seed1" in names and "resnet20-resnet8_ab_T2_seed0" not in names
    assert len(jobs) == 2 + 2 * (1 + 2 * 2 + 1 * 2)
    assert plan(grid, tmp_path / "runs", budget=0.25)[5].name == jobs[5].name  # deterministic
    kd = next(j for j in jobs if j.name == "resnet20-resnet8_kd-ls_T8_seed1")
    assert (kd.label, kd.variant, kd.pair, kd.axes) == ("kd+ls T=8", "kd+ls", ("resnet20", "resnet8"),
                                                        {"temperature": 8})
    assert (kd.cfg.t_student, kd.cfg.t_teacher, kd.cfg.alpha, kd.cfg.teacher_arch) == (8, 8, 0.5, "resnet20")
    assert kd.cfg.teacher == str(tmp_path / "runs" / "teacher_resnet20_seed0") and kd.after == "teacher_resnet20_seed0"
    assert (kd.cfg.epochs, kd.cfg.milestones, kd.cfg.eval_teacher) == (10, [5, 8], False)
    ab = next(j for j in jobs if j.name == "resnet14-resnet8_ab_T2_seed0")
    assert ab.cfg.method_options["init_epochs"] == 8  # RepDistiller's 30-epoch init stage, scaled like the epochs
    teacher = jobs[0]
    assert teacher.cfg.epochs == 1  # teacher_training sets the teachers' epochs: no budget
    assert [j.cfg.epochs for j in plan(grid, tmp_path / "runs", budget=3)][1:3] == [1, 3]


def test_the_data_seed_stays_fixed_across_seeds_methods_and_the_teacher(cli, tmp_path):
    grid = write_grid(tmp_path, common={**COMMON, "train_subset": 40, "test_subset": 20}, seeds=[0, 1, 2])
    jobs = plan(load_grid(grid), tmp_path / "runs")
    assert {j.seed for j in jobs} == {0, 1, 2} and {j.role for j in jobs} == {"teacher", "vanilla", "distill"}
    assert {(j.cfg.data_seed, j.cfg.train_subset, j.cfg.test_subset) for j in jobs} == {(0, 40, 20)}
    assert {j.cfg.data_seed for j in plan(load_grid(grid), tmp_path / "runs", overrides={"data_seed": 5})} == {5}
    code, out, err = cli("bench", "--grid", grid, "--out", tmp_path / "runs", "--dry-run")
    assert code == 0, err
    assert "images: 40 train / 20 test images, data seed 0 (every run)" in out


def test_grid_names_and_listing(cli, tmp_path):
    assert "bench/fashion_mnist_small" in packaged_grids()
    for spec in ("bench/fashion_mnist_small", "fashion_mnist_small", "configs/bench/fashion_mnist_small.yaml"):
        assert grid_path(spec).name == "fashion_mnist_small.yaml"
    assert not any(name.startswith("bench/") for name in packaged_configs())
    code, out, _ = cli("list", "grids")
    assert code == 0 and "bench/repdistiller_same_family" in out and "bench/kd_temperature" in out


@pytest.mark.parametrize("name", sorted(packaged_grids()))
def test_presets_name_known_models_methods_and_options(tmp_path, name):
    jobs = plan(load_grid(name), tmp_path, teachers="train")
    assert jobs and all(j.cfg.model for j in jobs)


def grid_state(run_dir):
    summary = run_dir / "summary.json"
    return json.loads(summary.read_text())["best_top1"], summary.stat().st_mtime_ns


@pytest.mark.slow
def test_interrupted_grid_resumes_without_redoing_finished_runs(cli, tmp_path):
    grid = write_grid(tmp_path, common={**COMMON, "epochs": 4, "dataset_options": {"num_train": 256, "num_test": 64}},
                      methods=["kd"])
    out = tmp_path / "runs"
    teacher, kd = out / "teacher_resnet14_seed0", out / "resnet14-resnet8_kd_seed0"
    bench = kdzoo_subprocess("bench", "--grid", grid, "--out", out)
    wait_for(kd / LAST, bench)
    bench.kill()
    bench.wait()
    assert run_state(teacher) == FINISHED and run_state(kd) == RESUMABLE
    before = grid_state(teacher)

    code, out_text, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    assert "teacher_resnet14_seed0: finished already, skipped" in out_text
    assert "resnet14-resnet8_kd_seed0: resuming" in out_text and f"Resuming {kd} after epoch" in out_text
    last = json.loads((kd / "summary.json").read_text())["last_top1"]
    assert f"resnet14-resnet8_kd_seed0: done, top-1 last {last:.2f}%" in out_text  # the last run: no time left
    assert grid_state(teacher) == before
    assert json.loads((kd / "summary.json").read_text())["epochs"] == 4

    (kd / LAST).unlink()  # as if killed during its first epoch: config.yaml but no checkpoint
    (kd / "summary.json").unlink()
    code, out_text, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    assert "resnet14-resnet8_kd_seed0: restarting" in out_text and run_state(kd) == FINISHED
    code, out_text, err = cli("bench", "--grid", grid, "--out", out, "--budget", "2")
    one_paragraph_error(code, err)
    assert "epochs: 4 there, 2 now" in err


@pytest.mark.slow
def test_parallel_runs_in_subprocesses_and_failures_are_reported_at_the_end_then_the_report(cli, tmp_path):
    # hint_layer 4 is a valid option but not a feature map of the resnets: the run fails once it builds its method
    grid = write_grid(tmp_path, methods=["vanilla", "kd", {"label": "broken", "method": "fitnet",
                                                           "method_options": {"hint_layer": 4}}])
    out = tmp_path / "runs"
    code, text, err = cli("bench", "--grid", grid, "--out", out, "--jobs", "2")
    assert code == 1, err
    assert "3 of 4 runs finished (0 of them before this command); 1 failed:" in text
    assert "teacher_resnet14_seed0: done, top-1 last " in text and "runs ended; about " in text
    assert "each run computes with" in text  # threads: OMP_NUM_THREADS as set, or shared out over the cores
    assert "resnet14-resnet8_broken_seed0: kdzoo: error: FitNet's hint_layer=4 is not a feature map" in text
    for name in ("teacher_resnet14_seed0", "vanilla_resnet8_seed0", "resnet14-resnet8_kd_seed0"):
        assert run_state(out / name) == FINISHED
    info = json.loads((out / "resnet14-resnet8_kd_seed0" / "bench.json").read_text())
    assert info["role"] == "distill" and info["pair"] == ["resnet14", "resnet8"]

    code, text, err = cli("report", out, "--metric", "best")
    assert code == 0, err
    for row, name in (("teacher", "teacher_resnet14_seed0"), ("vanilla", "vanilla_resnet8_seed0"),
                      ("kd", "resnet14-resnet8_kd_seed0")):
        best = json.loads((out / name / "summary.json").read_text())["best_top1"]
        assert f"| {row} | {best:.2f} |" in text
    assert "broken" not in text
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in (out / "plots").iterdir())


def test_concurrent_runs_share_the_cores_without_oversubscribing_them():
    assert threads_per_job(2, 8)[0] == 4
    threads, line = threads_per_job(4, 2)
    assert threads == 1 and "4 runs still share 2 core(s), so --jobs 2 finishes the grid as fast" in line
