"""Which runs of a report cell are seeds of one experiment: runs pool only when every setting but the seed
is equal; runs that differ in more get rows of their own, named by what differs (``kd (epochs=3)``)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ..config import Role, fields_with
from ..run_folder import RUNTIME_OPTIONS
from .records import Record

#: Options that never make two runs different experiments: the seed (what a cell averages over), paths,
#: device and logging, and the evaluation batch size (:attr:`Role.RUNTIME <kdzoo.config.Role.RUNTIME>` and
#: :attr:`Role.POOLED <kdzoo.config.Role.POOLED>`).
NOT_SETTINGS = RUNTIME_OPTIONS | fields_with(Role.POOLED)


def settings(record: Record) -> dict[str, Any]:
    """Everything that defines a run's experiment: its options but :data:`NOT_SETTINGS`, and the epochs its lr
    schedule spans when it was extended (``--extend``)."""
    values = {k: v for k, v in record.config.items() if k not in NOT_SETTINGS}
    if record.summary.get("schedule_epochs", values.get("epochs")) != values.get("epochs"):
        values["schedule_epochs"] = record.summary["schedule_epochs"]
    return values


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def split_rows(label: str, records: list[Record]) -> list[tuple[str, list[Record]]]:
    """The runs of one cell as ``(row label, runs)``: one row when they differ only in their seed, else one per
    set of settings, its label extended by the settings that differ (``kd (epochs=3)``)."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        groups[_key(settings(record))].append(record)
    if len(groups) == 1:
        return [(label, records)]
    values = [settings(members[0]) for members in groups.values()]
    names = sorted({k for v in values for k in v})
    differ = [k for k in names if len({_key({k: v.get(k)}) for v in values}) > 1]
    return [(f"{label} ({', '.join(f'{k}={_shown(v.get(k))}' for k in differ)})", members)
            for v, members in zip(values, groups.values(), strict=True)]


def _shown(value: Any) -> Any:
    """A setting as a row label shows it: an unset one (None: the method's default weight, the dataset's
    default, ...) as ``default``."""
    return "default" if value is None else value
