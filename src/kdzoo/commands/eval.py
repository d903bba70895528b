"""``kdzoo eval``: the top-1/top-5 accuracy of a checkpoint; for a multi-exit network also every exit and early
exit against FLOPs (:mod:`kdzoo.engine.early_exit`)."""

from __future__ import annotations

import argparse

from ..config import RunConfig, upgrade_saved_config
from ..errors import ConfigError
from .arguments import probability, whole_number


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="print the top-1/top-5 accuracy of a checkpoint (multi-exit networks: "
                              "every exit and early exit vs FLOPs)")
    p.add_argument("checkpoint", help="kdzoo run folder or checkpoint, a RepDistiller/mdistiller file, or a published "
                                      "teacher: pretrained:NAME (`kdzoo teachers`)")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the checkpoint; cifar100 for a published "
                                     "teacher)")
    p.add_argument("--arch", help="architecture, when the file does not record it")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--test-subset", type=whole_number, metavar="N",
                   help="evaluate on a fixed random subset of N images; 0 = the whole test split "
                        "(default: the run's own setting)")
    p.add_argument("--data-seed", type=int, help="seed that draws the test subset (default: the run's own, else 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--thresholds", type=probability, nargs="+", metavar="TAU",
                   help="multi-exit networks: early-exit confidence thresholds in [0, 1] "
                        "(default 0 0.5 0.7 0.8 0.9 0.95 0.99 1)")
    p.add_argument("--plot", help="multi-exit networks: accuracy-vs-FLOPs plot file (default: early_exit.png next "
                                  "to the checkpoint)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import teachers
    from ..data import build_data
    from ..engine import evaluate, load_model
    from ..engine.evaluate import absurd_loss_warning, check_fits
    from ..engine.runtime import resolve_device
    from ..engine.teacher_fit import check_published_fits, size_warning
    from ..models import MultiExitNet

    device = resolve_device(args.device)
    if teachers.is_pretrained(args.checkpoint):  # before it is downloaded
        check_published_fits(args.checkpoint, args.dataset or teachers.DATASET, {})
    model, data = load_model(args.checkpoint, arch=args.arch, device=device)
    exits = isinstance(model, MultiExitNet)
    if not exits and (args.thresholds or args.plot):
        raise ConfigError(f"--thresholds and --plot report early exit, and {args.checkpoint} holds a network without "
                          f"exits (train one with --method byot, or exit_kd with a teacher).")
    saved = data.get("config") or {}  # kdzoo checkpoints: evaluate on the data the run used
    dataset = args.dataset or saved.get("dataset") or (teachers.DATASET if teachers.is_pretrained(args.checkpoint)
                                                        else None)
    if dataset is None:
        raise ConfigError(f"{args.checkpoint} does not say which dataset it was trained on: pass --dataset NAME.")
    saved = upgrade_saved_config(saved)[0] if saved.get("dataset") == dataset else {}
    test_subset = saved.get("test_subset") if args.test_subset is None else args.test_subset or None  # 0: whole split
    data_seed = saved.get("data_seed", RunConfig.data_seed) if args.data_seed is None else args.data_seed
    bundle = build_data(dataset, root=args.data_root or saved.get("data_root"), download=args.download,
                        eval_batch_size=args.batch_size, device=device, seed=saved.get("seed", 0), data_seed=data_seed,
                        test_subset=test_subset, **saved.get("dataset_options", {}))
    check_fits(model, bundle, "checkpoint's model")
    if note := size_warning("the model in", args.checkpoint, data, bundle.image_size,
                            fix="Evaluate it on the dataset it was trained on (leave out --dataset)."):
        print(f"warning: {note}")
    result = evaluate(model, bundle.test, device)
    images = f"test subset of {test_subset} images, data seed {data_seed}" if test_subset else "whole test split"
    print(f"{model.kdzoo_arch} on {dataset} ({images}): "
          f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
    if warning := absurd_loss_warning(result["loss"], bundle.num_classes):
        print(warning)
    if exits:
        print_early_exit(args, model, bundle, dataset)
    return 0


def print_early_exit(args: argparse.Namespace, model, bundle, dataset: str) -> None:
    """Every exit alone and early exit per threshold, as tables and an accuracy-vs-FLOPs plot."""
    from ..engine.checkpoint import resolve_checkpoint_path
    from ..engine.early_exit import DEFAULT_THRESHOLDS, early_exit_report, format_report, plot_report

    report = early_exit_report(model, bundle.test, (bundle.in_channels, *bundle.image_size),
                               args.thresholds or DEFAULT_THRESHOLDS)
    print(f"\n{format_report(report)}")
    plot = args.plot or resolve_checkpoint_path(args.checkpoint).parent / "early_exit.png"
    print(f"\nplot: {plot_report(report, plot, f'{model.kdzoo_arch} with {model.num_exits} exits on {dataset}')}")
