"""``kdzoo teachers``: the published CIFAR-100 teachers (``--teacher pretrained:NAME``) and the teacher downloads
folder that holds them; ``kdzoo teachers fetch NAME|all`` downloads them, ``kdzoo teachers add FILE`` keeps a file
fetched another way."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("teachers", help="the published CIFAR-100 teachers (--teacher pretrained:NAME): list, "
                                               "fetch, or add a file downloaded by hand")
    p.add_argument("--cache-dir", action="store_true", help="print the teacher downloads folder "
                                                            "($KDZOO_HOME/teachers, default ~/.cache/kdzoo/teachers)")
    p.set_defaults(func=run, action=None)
    actions = p.add_subparsers(dest="action")
    fetch = actions.add_parser("fetch", help="download the teachers archive once and keep its teachers")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="published teachers, or 'all'")
    fetch.add_argument("--force", action="store_true", help="download again and replace the downloaded files "
                                                            "(they must match the ones recorded when they first "
                                                            "arrived)")
    add = actions.add_parser("add", help="keep a cifar_teachers.tar or a teacher's ckpt_epoch_240.pth downloaded "
                                         "another way (the same checks as a download)")
    add.add_argument("file", type=Path, help="the archive, or one teacher's checkpoint")
    add.add_argument("--name", help="which published teacher a checkpoint is (default: from its folder, "
                                    "<name>_vanilla)")


def run(args: argparse.Namespace) -> int:
    from .. import teachers
    from ..engine.checkpoint import check_teacher_file

    if args.cache_dir:
        print(teachers.downloads_dir())
    elif args.action == "fetch":
        names = teachers.published_names() if args.names == ["all"] else args.names
        report(teachers.fetch(names, force=args.force, check=check_teacher_file))
    elif args.action == "add":
        report(teachers.add(args.file, name=args.name, check=check_teacher_file))
    else:
        print(listing())
    return 0


def report(files) -> None:
    for f in files:
        print(f"pretrained:{f.name}: {f.path} ({f.size / 2**20:.1f} MiB, SHA-256 {f.sha256}; {f.source})")


def listing() -> str:
    """The text of ``kdzoo teachers``: every published teacher, its published top-1, whether and where it is
    downloaded."""
    from .. import teachers
    from ..published import released_teacher_top1
    from ..teachers.catalog import DEFAULT_BASE_URL, KNOWN_ARCHIVE, KNOWN_TEACHERS
    from ..text_table import text_table

    manifest, url = teachers.read_manifest(), teachers.archive_url()
    rows = []
    for name in teachers.published_names():
        record = teachers.downloaded_record(name, manifest)
        top1 = released_teacher_top1(name, teachers.DATASET)
        size = record["size"] if record else KNOWN_TEACHERS[name].size
        rows.append([f"pretrained:{name}", f"{top1:.2f}" if top1 is not None else "-", "yes" if record else "no",
                     f"{size / 2**20:.1f} MiB" if size else "-", record["source"] if record else "-"])
    known = "known" if KNOWN_ARCHIVE.sha256 else "not known to kdzoo yet: the first download is trusted on TLS alone"
    mirror = (f"mirror from ${teachers.URL_ENV}" if url != f"{DEFAULT_BASE_URL}/{teachers.ARCHIVE}"
              else f"set ${teachers.URL_ENV} to a mirror's base URL if GitHub is slow or blocked")
    return (text_table(["teacher", "CIFAR-100 top-1 (RepDistiller)", "downloaded", "size", "source"], rows)
            + f"\n\nUse one with --teacher pretrained:NAME (distill, eval, bench grids); it is fetched on first use.\n"
              f"folder:  {teachers.downloads_dir()}\n"
              f"archive: {url} ({mirror}); or download it by hand and `kdzoo teachers add {teachers.ARCHIVE}`\n"
              f"hashes:  each file's size and SHA-256 are recorded when it arrives and checked on every use; the "
              f"published hashes are {known}.")
