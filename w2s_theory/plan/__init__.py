r"""The declared analysis plan (``experiments/analysis.toml``) as validated dataclasses.

`load_plan` reads the TOML file that declares, before the runs, what the claims ledger
(`w2s_theory.ledger.build`) computes: the Holm families (one claim x regime x contrast x noise
level) and the settings each takes from which tables, the unit of replication (the data
split) and its re-split tables, the statistics, the equivalence margins, the verdict rules,
claim 4's capacity order, claim 5's chance statement, claim 6's checks, the sensitivity
analyses (never pooled) and the tables read by nothing. `default_plan` derives a plan for a
researcher's own result table: every registered loss in it against a reference loss, at every
noise level present, over every (dataset, weak, strong) setting.

Errors for a bad plan are `w2s_theory.config.ConfigError` (a ``ValueError``) whose message
starts with ``"plan:"`` and names the key. One rule is enforced here rather than trusted: no
primary analysis reads test data to choose anything, so a member or sensitivity filter on a
test-measured quantity (an ``*_acc``, ``*_auroc``, ``*_ece``, ``pgr``, ``*_slack`` ... column)
or any ``select_by`` / ``order_by``-style key is refused, and claim 4 must order weak models by
the model registry.

Examples:
    >>> from w2s_theory.plan import load_plan
    >>> p = load_plan("experiments/analysis.toml")            # doctest: +SKIP
    >>> p.family("c1.minibatch.reverse_kl").kind, p.margins["hh_rlhf"]   # doctest: +SKIP
    ('acc', 0.5)
"""

from .declared import (
    DEFAULT_TABLE,
    KINDS,
    REPLICATIONS,
    Claim6Entry,
    DuplicatePair,
    Family,
    Member,
    Plan,
    Sensitivity,
    is_test_measured,
    load_plan,
)
from .declared import plan_from_dict as plan_from_dict  # importable, not in __all__
from .default import default_plan

__all__ = ["Member", "Family", "DuplicatePair", "Claim6Entry", "Sensitivity", "Plan", "KINDS",
           "REPLICATIONS", "DEFAULT_TABLE", "load_plan", "default_plan",
           "is_test_measured"]
