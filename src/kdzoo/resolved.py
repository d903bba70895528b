"""The run resolved once from its config (:func:`resolve_run`): the method it trains with, what that method reads
and needs of the networks, whether it distils, and the run options its teacher-cache key holds. The build
(:func:`kdzoo.engine.build.build`, whose ``Setup.run`` it is), the teacher cache and the grid's shared cache
receive it instead of deriving these from the config again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from .config import Role, RunConfig, fields_with
from .methods import Reads, method_needs


@dataclass(frozen=True)
class ResolvedRun:
    """``cfg`` with its method defaulted (kd when a teacher is given without one); ``method`` the one it trains
    with (``vanilla``: plain training); ``needs`` what that method with the run's options reads and needs of the
    networks (:func:`~kdzoo.methods.method_needs`); ``distills`` the one rule for a distillation run
    (:attr:`RunConfig.has_method <kdzoo.config.RunConfig.has_method>`); ``key_options`` the values of the options
    its teacher-cache key holds (:attr:`Role.CACHE_KEY <kdzoo.config.Role.CACHE_KEY>`)."""

    cfg: RunConfig
    method: str
    needs: Reads
    distills: bool
    key_options: Mapping[str, Any]

    @property
    def views(self) -> int:
        """Views of each batch the networks see: 2 with a strong second view (MLKD), else 1."""
        return 2 if self.needs.strong_view else 1


def resolve_run(cfg: RunConfig) -> ResolvedRun:
    """``cfg``'s run, resolved (unknown method names and options fail here, as in the method's registry)."""
    method = cfg.run_method
    if cfg.has_method and cfg.method is None:
        cfg = replace(cfg, method=method)
    key_options = MappingProxyType({name: getattr(cfg, name) for name in sorted(fields_with(Role.CACHE_KEY))})
    return ResolvedRun(cfg, method, method_needs(method, cfg.method_options), cfg.has_method, key_options)
