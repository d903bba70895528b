"""The ``kdzoo`` command line: one module per command, each with ``add_parser(subparsers)`` (its flags, and
``run(args) -> exit status`` as the parser's ``func``). :func:`main` builds the parser from them and turns
errors and interruptions into one line on stderr and an exit status.

The library never imports this package; a command imports what it needs when it runs, so ``kdzoo --help``
stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__, distributed
from ..errors import KdzooError
from .parser import Parser

#: The commands, in the order ``kdzoo --help`` lists them; each is the module of that name.
COMMANDS = ("train", "distill", "eval", "list", "demo", "bench", "report", "temperature", "maps", "plot",
            "teachers")


def build_parser() -> argparse.ArgumentParser:
    """The ``kdzoo`` parser, one subparser per module of :data:`COMMANDS`."""
    parser = Parser(prog="kdzoo", description="Knowledge distillation for PyTorch.")
    parser.add_argument("--version", action="version", version=f"kdzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``kdzoo ARGV``: 0 on success, 2 after a ``kdzoo: error: ...`` line, 130/143 when interrupted."""
    from ..engine.interrupts import EXIT_CODES, Interrupted, catch_signals

    args = build_parser().parse_args(argv)
    try:
        with catch_signals():
            return args.func(args)
    except KdzooError as exc:
        where = f" (rank {distributed.rank()})" if distributed.is_distributed() else ""
        print(f"kdzoo: error{where}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stdout = open(os.devnull, "w")
        return 0
    except RuntimeError as exc:  # under torchrun: a collective that failed because another process is gone
        if not distributed.lost_peer(exc):
            raise
        print(f"kdzoo: error (rank {distributed.rank()}): {distributed.lost_peer_message(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: full disk, permissions, a missing folder
        target = f"{exc.filename}: " if exc.filename else ""
        print(f"kdzoo: error: {target}{exc.strerror or exc}. Check the path, its permissions and the free space.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under catch_signals
        exc = exc if isinstance(exc, Interrupted) else Interrupted()
        print(f"\n{exc.message(args.command)}", file=sys.stderr)
        return EXIT_CODES[exc.signal_name]
    finally:
        distributed.cleanup()
