"""The ``kdzoo`` parser class: argparse's errors plus "did you mean ...?" for a mistyped command, choice or flag.

``add_subparsers`` makes its subparsers of the same class, so every command's parser suggests too.
"""

from __future__ import annotations

import argparse
import re

from ..errors import close_names, did_you_mean

#: argparse's ``argument NAME: invalid choice: VALUE (choose from ...)`` (the value quoted or not, by version).
INVALID_CHOICE = re.compile(r"argument (?P<name>\S+): invalid choice: '?(?P<value>[^' ]*)'?")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors suggest the close names of this parser; still exit status 2."""

    def add_subparsers(self, **kwargs):
        return super().add_subparsers(**{"parser_class": CommandParser, **kwargs})

    def error(self, message: str):
        hint = self.suggestion(message)
        super().error(f"{message}.{hint}" if hint else message)

    def suggestion(self, message: str) -> str:
        """The "did you mean" of an invalid choice or of unrecognized flags; ``""`` otherwise."""
        if match := INVALID_CHOICE.match(message):
            choices = [str(c) for a in self._actions if a.choices and _name(a) == match["name"] for c in a.choices]
            return did_you_mean(match["value"], choices, n=1)
        if message.startswith("unrecognized arguments: "):
            flags = [s for a in self._actions for s in a.option_strings]
            typed = [word.split("=")[0] for word in message.split()[2:] if word.startswith("-")]
            close = {word: names[0] for word in typed if (names := close_names(word, flags, n=1, cutoff=0.6))}
            if len(close) == 1:
                return f" Did you mean {next(iter(close.values()))}?"
            if close:
                return f" Did you mean {', '.join(f'{name} (for {word})' for word, name in close.items())}?"
        return ""


class CommandParser(Parser):
    """A command's parser: it refuses the flags it does not know itself (argparse leaves that to the top
    parser, which knows only its own), so the suggestion comes from this command's flags."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def _name(action: argparse.Action) -> str:
    """How argparse names an argument in its errors: its flags, else its metavar or dest."""
    return "/".join(action.option_strings) or action.metavar or action.dest
