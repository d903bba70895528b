"""``kdzoo temperature``: what the distillation temperature does to a distribution (probabilities, entropy, KL,
plots), for given logits or a real teacher (and student) on a test image (:mod:`.temperature_report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..temperature import CLASSIC_CLASSES, CLASSIC_LOGITS, CLASSIC_TEMPERATURES
from .arguments import positive


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("temperature", help="what the distillation temperature does to a distribution: "
                                                  "probabilities, entropy, plots")
    p.add_argument("--logits", type=float, nargs="+", default=list(CLASSIC_LOGITS),
                   help="logits to soften (default: the classic 4-class example)")
    p.add_argument("--classes", nargs="+", default=list(CLASSIC_CLASSES), help="class names, one per logit")
    p.add_argument("--temperatures", type=positive, nargs="+", default=list(CLASSIC_TEMPERATURES),
                   help="temperatures to compare")
    p.add_argument("--out", default="runs/temperature/temperature.png",
                   help="plot file, its folder created if missing (default: runs/temperature/temperature.png; with "
                        "--student also <stem>_kl.png and <stem>_standardized.png)")
    p.add_argument("--teacher", help="use a real teacher's logits on a test image: kdzoo run folder or checkpoint, or "
                                     "a RepDistiller file")
    p.add_argument("--student", help="also a student: compare equal/different temperatures and standardized logits "
                                     "on the image's test batch")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the teacher's checkpoint; cifar100 for "
                                     "pretrained:NAME)")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--index", type=int, help="test image number (default 0)")
    p.add_argument("--class", dest="class_name", help="use the first test image of this class")
    p.add_argument("--batch-size", type=int, default=64, help="test batch for KL(teacher || student)")
    p.add_argument("--top", type=int, default=5, help="classes shown (the teacher's most likely); entropy uses all")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .temperature_report import load_sample, logits_report, model_report

    if args.teacher is None:
        if args.student or args.index is not None or args.class_name:
            raise ConfigError("--student, --index and --class need --teacher (a kdzoo run folder or checkpoint, or a "
                              "RepDistiller file).")
        print(logits_report(args.logits, args.classes, args.temperatures, Path(args.out)))
        return 0
    sample = load_sample(args.teacher, args.student, dataset=args.dataset, data_root=args.data_root,
                         download=args.download, index=args.index, class_name=args.class_name,
                         batch_size=args.batch_size, device=args.device)
    print(model_report(sample, args.temperatures, args.top, Path(args.out)))
    return 0
