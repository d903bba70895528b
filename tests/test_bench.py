"""`kdzoo bench`: grid files, planning (names, budget, axes, the shared teacher cache), and the runner: skip, resume,
restart, parallel subprocesses, failures reported at the end, the teacher cache filled once and read by the others."""

import dataclasses
import json
import os
import time

import pytest
import yaml

from conftest import kdzoo_subprocess, one_paragraph_error, wait_for
from kdzoo.config import build_config, packaged_configs
from kdzoo.engine.checkpoint import LAST
from kdzoo.engine.short_runs import scaled_to_run
from kdzoo.grid.grid_file import grid_path, load_grid, packaged_grids
from kdzoo.grid.plan import apply_budget, plan
from kdzoo.grid.progress import threads_per_job
from kdzoo.grid.runner import FINISHED, RESUMABLE, run_state

STEPS = 3  # COMMON: 96 training images in batches of 32
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
    assert kd.cfg.teacher == str(tmp_path / "runs" / "teacher_resnet20_seed0")
    # its teacher, then the run of its teacher and seed that fills the teacher cache (the temperature is not in its key)
    assert kd.after == ("teacher_resnet20_seed0", "resnet20-resnet8_kd-ls_T2_seed1")
    assert (kd.cfg.epochs, kd.cfg.milestones, kd.cfg.eval_teacher) == (10, [5, 8], False)
    ab = next(j for j in jobs if j.name == "resnet14-resnet8_ab_T2_seed0")
    # RepDistiller's 30 init epochs are set for its 240-epoch runs: 10/240 of them (at least 1), not 10/40
    assert ab.cfg.method_options["init_epochs"] == 1
    teacher = jobs[0]
    assert teacher.cfg.epochs == 1  # teacher_training sets the teachers' epochs: no budget
    assert [j.cfg.epochs for j in plan(grid, tmp_path / "runs", budget=3)][1:3] == [1, 3]


def test_a_budget_scales_epoch_options_given_like_the_run_and_defaults_against_the_reference():
    cfg = build_config(None, {"model": "resnet8", "teacher": "t.pt", "method": "ab", "epochs": 40,
                              "dataset": "synthetic"})
    assert apply_budget(cfg, 4).method_options["init_epochs"] == scaled_to_run(30, 4) == 1
    given = dataclasses.replace(cfg, method_options={"init_epochs": 20})
    assert apply_budget(given, 4).method_options["init_epochs"] == 2  # 20 of the grid's 40 epochs: 2 of 4
    dkd = dataclasses.replace(cfg, method="dkd", method_options={})
    assert apply_budget(dkd, 120).method_options["warmup_epochs"] == 10  # DKD's 20 of 240


def test_the_data_seed_stays_fixed_across_seeds_methods_and_the_teacher(cli, tmp_path):
    grid = write_grid(tmp_path, common={**COMMON, "train_subset": 40, "test_subset": 20}, seeds=[0, 1, 2])
    jobs = plan(load_grid(grid), tmp_path / "runs")
    assert {j.seed for j in jobs} == {0, 1, 2} and {j.role for j in jobs} == {"teacher", "vanilla", "distill"}
    assert {(j.cfg.data_seed, j.cfg.train_subset, j.cfg.test_subset) for j in jobs} == {(0, 40, 20)}
    assert {j.cfg.data_seed for j in plan(load_grid(grid), tmp_path / "runs", overrides={"data_seed": 5})} == {5}
    code, out, err = cli("bench", "--grid", grid, "--out", tmp_path / "runs", "--dry-run")
    assert code == 0, err
    assert "images: 40 train / 20 test images, data seed 0 (every run)" in out


def test_the_runs_a_teacher_cache_serves_share_one_and_wait_for_the_run_that_fills_it(cli, tmp_path):
    methods = ["vanilla", "kd", "dkd", "mlkd", "fitnet", "ofd", "byot"]
    out, grid = tmp_path / "runs", load_grid(write_grid(tmp_path, methods=methods, seeds=[0, 1]))
    jobs = {j.name: j for j in plan(grid, out)}
    cached = {name for name, job in jobs.items() if job.cfg.teacher_cache}
    assert cached == {f"resnet14-resnet8_{m}_seed{s}" for m in ("kd", "dkd", "mlkd") for s in (0, 1)}
    assert {jobs[name].cfg.teacher_cache for name in cached} == {str(out / "teacher_cache")}
    teacher = ("teacher_resnet14_seed0",)
    assert jobs["resnet14-resnet8_kd_seed1"].after == teacher  # it fills seed 1's cache
    assert jobs["resnet14-resnet8_dkd_seed1"].after == (*teacher, "resnet14-resnet8_kd_seed1")
    assert jobs["resnet14-resnet8_mlkd_seed1"].after == teacher  # its strong view: a key of its own
    assert {j.cfg.teacher_cache for j in plan(grid, out, teacher_cache=False)} == {None}
    assert plan(grid, out, teacher_cache=False)[3].after == teacher
    mine = load_grid(write_grid(tmp_path, methods=methods, common={**COMMON, "teacher_cache": "mine"}))
    assert {j.cfg.teacher_cache for j in plan(mine, out)} == {None, "mine"}  # no error for the runs it cannot serve

    code, text, err = cli("bench", "--grid", tmp_path / "grid.yaml", "--out", out, "--dry-run")
    assert code == 0, err
    assert ("teacher cache: mine for the 3 runs of kd, dkd, mlkd; per teacher, seed and data the first run fills it, "
            "the others then read it (2 fill, 1 read)\n") in text
    assert "teacher cache: not used by teacher, vanilla, byot: the run has no teacher\n" in text
    assert "teacher cache: not used by fitnet: fitnet reads the teacher's feature maps, not only its logits\n" in text
    assert "teacher cache: not used by ofd: ofd runs the teacher in batch statistics" in text
    assert "resnet14-resnet8_dkd_seed0: new, 1 epoch, after teacher_resnet14_seed0, resnet14-resnet8_kd_seed0" in text
    code, text, err = cli("bench", "--grid", tmp_path / "grid.yaml", "--out", out, "--dry-run", "--no-teacher-cache")
    assert code == 0, err
    assert "teacher cache: off (--no-teacher-cache)\n" in text and "not used" not in text


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


def cache_record(run_dir):
    return json.loads((run_dir / "summary.json").read_text())["teacher_cache"]


@pytest.mark.slow
def test_a_grid_fills_its_teacher_cache_once_and_reads_it_when_run_again_or_extended(cli, tmp_path):
    out = tmp_path / "runs"
    code, text, err = cli("bench", "--grid", write_grid(tmp_path, methods=["kd", "dkd"]), "--out", out)
    assert code == 0, err
    kd, dkd, nkd = (out / f"resnet14-resnet8_{m}_seed0" for m in ("kd", "dkd", "nkd"))
    assert (cache_record(kd)["hits"], cache_record(kd)["misses"]) == (0, STEPS)
    assert (cache_record(dkd)["hits"], cache_record(dkd)["misses"]) == (STEPS, 0)
    assert f"teacher cache: {STEPS} batches read (hits), {STEPS} computed (misses) by 2 runs; " in text
    code, text, err = cli("bench", "--grid", write_grid(tmp_path, methods=["kd", "dkd", "nkd"]), "--out", out)
    assert code == 0, err
    assert "resnet14-resnet8_dkd_seed0: finished already, skipped" in text
    assert (cache_record(nkd)["hits"], cache_record(nkd)["misses"]) == (STEPS, 0)
    assert f"teacher cache: {2 * STEPS} batches read (hits), {STEPS} computed (misses) by 3 runs; " in text


@pytest.mark.slow
def test_when_the_run_that_fills_the_teacher_cache_fails_the_runs_waiting_for_it_fill_it_themselves(cli, tmp_path):
    grid = write_grid(tmp_path, methods=["kd", "dkd"])
    out = tmp_path / "runs"
    kd = next(j for j in plan(load_grid(grid), out) if j.variant == "kd")
    (out / kd.name).mkdir(parents=True)
    (out / kd.name / "config.yaml").write_text(yaml.safe_dump(kd.cfg.to_dict()), encoding="utf-8")
    (out / kd.name / LAST).write_bytes(b"not a checkpoint")  # an interrupted run whose checkpoint is broken
    code, text, err = cli("bench", "--grid", grid, "--out", out, "--jobs", "2")
    assert code == 1, err
    assert "2 of 3 runs finished (0 of them before this command); 1 failed:" in text
    assert text.index(f"{kd.name}: FAILED") < text.index("resnet14-resnet8_dkd_seed0: starting")
    dkd = out / "resnet14-resnet8_dkd_seed0"
    assert run_state(dkd) == FINISHED and (cache_record(dkd)["hits"], cache_record(dkd)["misses"]) == (0, STEPS)


@pytest.mark.slow
def test_parallel_runs_in_subprocesses_and_failures_are_reported_at_the_end_then_the_report(cli, tmp_path,
                                                                                         monkeypatch):
    # hint_layer 4 is a valid option but not a feature map of the resnets: the run fails once it builds its method
    grid = write_grid(tmp_path, methods=["vanilla", "kd", {"label": "broken", "method": "fitnet",
                                                           "method_options": {"hint_layer": 4}}, "dkd"])
    out = tmp_path / "runs"
    sleeps = []   # the grid waits on its runs' ends; it polled them every 0.2 s
    monkeypatch.setattr(time, "sleep", sleeps.append)
    code, text, err = cli("bench", "--grid", grid, "--out", out, "--jobs", "2")
    assert code == 1, err
    assert sleeps == []
    assert "4 of 5 runs finished (0 of them before this command); 1 failed:" in text
    assert "teacher_resnet14_seed0: done, top-1 last " in text and "runs ended; about " in text
    assert "each run computes with" in text  # threads: OMP_NUM_THREADS as set, or shared out over the cores
    assert "resnet14-resnet8_broken_seed0: kdzoo: error: FitNet's hint_layer=4 is not a feature map" in text
    for name in ("teacher_resnet14_seed0", "vanilla_resnet8_seed0", "resnet14-resnet8_kd_seed0"):
        assert run_state(out / name) == FINISHED
    # dkd waited for kd, which filled the teacher cache, and read it
    assert text.index("resnet14-resnet8_kd_seed0: done") < text.index("resnet14-resnet8_dkd_seed0: starting")
    dkd = cache_record(out / "resnet14-resnet8_dkd_seed0")
    assert (dkd["hits"], dkd["misses"]) == (STEPS, 0)
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


@pytest.mark.skipif(os.name == "nt", reason="Windows replaces no open file")
def test_every_file_a_grid_reader_keys_on_is_replaced_whole_not_rewritten_in_place(tmp_path):
    """config.yaml, bench.json and summary.json each replaced by a new file (a reader that opened the old one reads
    it whole): bench.json was truncated and rewritten in place, so a reader could see half of it."""
    from kdzoo.grid.records import INFO, write_info
    from kdzoo.run_folder import CONFIG, SUMMARY, save_config, write_summary

    cfg = build_config(None, {"model": "resnet8"})
    writers = {CONFIG: lambda: save_config(tmp_path, cfg), INFO: lambda: write_info(tmp_path, {"role": "vanilla"}),
               SUMMARY: lambda: write_summary(tmp_path, {"best_top1": 1.0})}
    for name, write in writers.items():
        (tmp_path / name).write_text("old", encoding="utf-8")
        with open(tmp_path / name, encoding="utf-8") as reader:
            write()
            assert reader.read() == "old", name
        assert (tmp_path / name).read_text(encoding="utf-8") != "old", name
