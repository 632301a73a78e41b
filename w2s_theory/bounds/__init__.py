"""Lemma 1 and Theorem 2 of arXiv:2502.11107, checked on a finite population (numpy).

Notation (``docs/theory.md``): ``F*`` the truth, ``F_w`` the weak model, ``F_sw`` the
strong student; rows are distributions, shape ``(n, k)``, or the binary
shorthand ``(n,)`` = P(class 1). The population is the empirical measure of the
``n`` rows, so every statement holds *exactly* on it, not only in expectation.

* Risk ``R(F) = E_x KL(F*(x) || F(x))`` (KL form; the CE form differs by the
  constant ``E H(F*)``, so risk *differences* agree).
* Disagreements ``d_forward = E KL(F_w || F_sw)``, ``d_reverse = E KL(F_sw || F_w)``.

**Lemma 1** (either direction): if every coordinate of ``F_w`` and ``F_sw`` is
``>= gamma``, then

``|R(F_sw) - R(F_w)| <= E TV / gamma <= sqrt(d / 2) / gamma``  for ``d = d_forward, d_reverse``,

and the data-dependent ``E[TV(x) / m(x)]``, ``m(x) = min_i min(F_w,i(x), F_sw,i(x))``,
sits between ``|gap|`` and ``E TV / gamma``.

**Theorem 2**: if ``F_sw`` is the reverse-KL projection of ``F_w`` onto a
mixture-convex class containing ``F*``, then ``R(F_sw) <= R(F_w) - d_reverse``.

Performance: on the binary shorthand both checks run fused passes over cache-sized
blocks (validation included), on fixed segments of rows that worker threads can share
(``W2S_THEORY_THREADS``, default 1); partial sums are added in segment order, so the
result does not depend on the thread count.
``benchmarks/bench_bounds.py`` reports the cost against one numpy pass.

Input and tolerance: arrays go through `w2s_theory._validation` (numpy arrays,
lists, CPU tensors; ``requires_grad`` tensors are detached). k-class rows may sum to 1
within ``ROW_SUM_ATOL`` (``1e-6``) and are renormalised at the boundary, so Lemma 1's
chain (``holds``) and Theorem 2's slack are those of the nearest distributions: e.g.
``lemma1([[1, 0]], [[.5, .5]], [[.5 - 8e-7, .5]], gamma=1e-3).holds`` is true. The
floor ``gamma`` is checked on the renormalised rows (what the bounds use).

References
----------
Yao et al., arXiv:2502.11107 (2025), Lemma 1 and Theorem 2.
Csiszár, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
"""


from ._blocks import BLOCK as _BLOCK  # noqa: F401 - the block sizes, for the white-box tests
from ._blocks import SEGMENT as _SEGMENT  # noqa: F401
from .calculators import (
    lemma1_constant,
    strong_risk_lower_bound,
    strong_risk_upper_bound,
    theorem2_risk_bound,
)
from .lemma1_chain import lemma1
from .results import Lemma1Result, Theorem2Result
from .theorem2_slack import theorem2

__all__ = [
    "Lemma1Result",
    "Theorem2Result",
    "lemma1",
    "theorem2",
    "lemma1_constant",
    "strong_risk_upper_bound",
    "strong_risk_lower_bound",
    "theorem2_risk_bound",
]

# Float round-off allowed when comparing mathematically ordered quantities:
