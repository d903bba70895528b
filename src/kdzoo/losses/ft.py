"""Factor transfer: Kim, Park, Kwak, "Paraphrasing Complex Network: Network Compression via Factor
Transfer", NeurIPS 2018.

The student's factor (Translator output) is matched to the teacher's factor (Paraphraser encoder
output) after pool-to-match, through the AT-style spatial map of each factor (as RepDistiller's
``FactorTransfer(p1=2, p2=1)``, not the paper's normalised flattened factor):

    phi(F) = normalize_2( vec_{HW}( 1/C * sum_c F_c^{p1} ) )
    L = 1/(B*H*W) * sum |phi(F_s) - phi(F_t)|^{p2}       (p2 = 1: L1; other p2: no absolute value)

Channel counts of the two factors need not match.
"""

from __future__ import annotations

from torch import Tensor

from .at import attention_map
from .common import pool_to_match

__all__ = ["ft_loss"]


def ft_loss(factor_s: Tensor, factor_t: Tensor, p1: float = 2, p2: float = 1) -> Tensor:
    """Mean |phi(factor_s) - phi(factor_t)|^p2 of the L2-normalised channel-mean-of-powers maps."""
    factor_s, factor_t = pool_to_match(factor_s, factor_t)
    diff = attention_map(factor_s, p1) - attention_map(factor_t, p1)
    return diff.abs().mean() if p2 == 1 else diff.pow(p2).mean()
