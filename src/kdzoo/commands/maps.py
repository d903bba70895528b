"""``kdzoo maps``: AT's attention maps (Zagoruyko & Komodakis, ICLR 2017) of a teacher and students on one test
image, stage by stage, side by side, with each student's AT distance to the teacher per stage
(:mod:`kdzoo.attention_maps`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("maps", help="attention maps (AT's) of a teacher and students on one test image, per "
                                           "stage")
    p.add_argument("--teacher", required=True, help="kdzoo run folder or checkpoint, a RepDistiller file, or "
                                                    "pretrained:NAME")
    p.add_argument("--student", nargs="+", default=[], metavar="RUN", help="students (kdzoo run folders or "
                                                                           "checkpoints), one row each")
    p.add_argument("--class", dest="class_name", help="use the first test image of this class")
    p.add_argument("--index", type=int, help="test image number (default 0)")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the teacher's checkpoint; cifar100 for "
                                     "pretrained:NAME)")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--out", default="runs/maps/attention_maps.png", help="plot file, its folder created if missing "
                                                                        "(default: runs/maps/attention_maps.png)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..attention_maps import at_distances, attention_maps, stage_outputs
    from ..plots import plot_attention_maps
    from ..text_table import text_table
    from .test_image import find_test_image

    found = find_test_image(args.teacher, args.student, args.dataset, args.data_root, args.download, args.index,
                            args.class_name, batch_size=64, device=args.device)
    image = found.images[found.position:found.position + 1]
    names = [f"teacher {args.teacher}", *(f"student {s}" for s in args.student)]
    stages = [stage_outputs(model, image) for model in found.models]
    maps = [attention_maps(s) for s in stages]
    width = max(len(m) for m in maps)
    header = [f"stage {i + 1}" for i in range(width)]
    shapes = [[name, *(f"{a.shape[0]}x{a.shape[1]}" for a in m), *[""] * (width - len(m))]
              for name, m in zip(names, maps, strict=True)]
    lines = [f"{found.description}: attention maps A = mean over channels of F^2 per stage (H x W)",
             text_table(["network", *header], shapes)]
    if args.student:
        rows = []
        for name, student in zip(args.student, stages[1:], strict=True):
            distances = at_distances(student, stages[0])
            rows.append([name, *(f"{d:.3g}" for d in distances), *[""] * (width - len(distances)),
                         f"{sum(distances):.3g}"])
        lines += ["\nAT's term against the teacher per stage (mean squared difference of the normalised maps; "
                  "AT's loss before beta):", text_table(["student", *header, "sum"], rows)]
    labels = [Path(p).name for p in (args.teacher, *args.student)]
    labels = [f"{role}: {label}" for role, label in zip(["teacher"] + ["student"] * len(args.student), labels,
                                                       strict=True)]
    plot = plot_attention_maps(image[0], dict(zip(labels, maps, strict=True)), Path(args.out),
                               f"Attention maps on {found.description}")
    print("\n".join(lines + [f"\nplot: {plot}"]))
    return 0
