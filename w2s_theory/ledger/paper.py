"""The paper's claims and regimes, its reported patterns (``experiments/paper_reference/``) and
Ghosh et al.'s symmetry defect of a loss; the repository root the ledger reads from."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .._validation import (
    ArgumentTypeError,
    PathNotFound,
    check_int,
    check_path,
    check_scalar,
)
from ..results_table import ResultTableError

ALPHA = 0.05


def symmetric_loss_defect(loss: str, y: float = 0.3, n_grid: int = 101) -> float:
    r"""``max_p - min_p`` of ``l(p, y) + l(p, 1 - y)`` for a binary W2SG loss (0: symmetric).

    Ghosh et al. (2017): a loss with ``l(p, y) + l(p, 1 - y)`` constant in ``p`` is
    noise-tolerant under symmetric label flips (its risk minimiser is unchanged). Reverse CE
    ``-[p log y + (1-p) log(1-y)]`` has the constant sum ``-log y - log(1 - y)``; reverse KL
    adds ``-2 H(p)``, forward KL/CE are not symmetric either. Evaluated with
    `w2s_theory.losses.get_loss` on ``n_grid`` evenly spaced student logits in ``[-4, 4]``.
    The sum of each of these losses is even in the logit and monotone on each side of 0, so
    its extremes lie at 0 and at the ends: ``n_grid`` must be odd (the grid then holds 0)
    and at least 3, and the grid's answer is then exact on ``[-4, 4]``.

    Args:
        loss: a binary loss name of `w2s_theory.losses.get_loss`.
        y: the weak label, in ``(0, 1)``.
        n_grid: odd, ``>= 3``.

    Examples:
        >>> symmetric_loss_defect("reverse_ce") < 1e-12, symmetric_loss_defect("reverse_kl") > 0.1
        (True, True)
    """
    import torch

    from ..losses import get_loss

    if not isinstance(loss, str):
        raise ArgumentTypeError(f"loss: must be a loss name (str), got {type(loss).__name__}")
    y = check_scalar(y, "y", low=0.0, low_open=True, high=1.0)
    if y == 1.0:
        raise ValueError("y: must lie in (0, 1) (the losses are infinite at y = 1), got 1.0")
    n_grid = check_int(n_grid, "n_grid", low=3)
    if n_grid % 2 == 0:
        raise ValueError(f"n_grid: must be odd (the grid must hold the logit 0, where the "
                         f"sums are extreme), got {n_grid}")
    from ..losses import check_loss_name

    f = get_loss(check_loss_name(loss, "loss"))
    z = torch.linspace(-4.0, 4.0, n_grid, dtype=torch.float64)
    yv = torch.full_like(z, float(y))
    tot = f(z, yv, reduction="none") + f(z, 1.0 - yv, reduction="none")
    return float(tot.max() - tot.min())


# ============================================================================ claims
CLAIMS = {
    1: "Reverse KL/CE beats forward KL/CE (no label noise)",
    2: "Noise robustness: from 0 to 30-40 % flipped weak labels reverse drops less than forward",
    3: "Reverse CE + confidence regularization beats forward CE + confidence regularization",
    4: "A stronger weak model gives a better student",
    5: "Reverse KL may fail under extreme noise (50 % flips)",
    6: "Theorem 2: the reverse-KL student beats the teacher by at least the disagreement",
}


#: Regimes a plan's families name (``experiments/analysis.toml``; ``tests/test_analysis_plan.py``
#: checks that every family's regime is one of these), in report order.
REGIMES = ("last_layer_minibatch", "last_layer_converged", "partial_top0", "partial_top1",
           "partial_top2", "full_finetune", "finetune_head_only")


def repo_root(root, name: str = "root") -> Path:
    if root is None:
        return Path(__file__).resolve().parents[2]
    p = check_path(root, name, must="dir")
    if name == "root" and not (p / "experiments").is_dir():
        raise PathNotFound(f"{name}: {p} has no experiments/ folder (give the repository root, "
                           f"the folder holding experiments/results/)")
    return p


def _read(path: Path):
    """The CSV at ``path`` as a DataFrame; ``None`` when it is missing or has no rows. A file
    that exists but cannot be read raises `ResultTableError` naming it: the paper's reference
    tables are never read around."""
    if not path.exists():
        return None
    if path.is_file() and path.stat().st_size == 0:
        raise ResultTableError(f"{path}: empty file (0 bytes); restore it, or move it aside")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            UnicodeDecodeError) as exc:
        raise ResultTableError(f"{path}: cannot be read as CSV "
                               f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                               f"restore it, or move it aside") from None
    return df if len(df) else None


# ---------------------------------------------------------------------------- paper patterns
def paper_patterns(ref_dir=None) -> dict:
    """The paper's reported patterns, computed from the reference CSVs (percentage points).

    Keys ``(claim, contrast)`` -> ``(value, note)`` where value is the mean over the paper's
    settings (``nan`` when the summary has no number) and note lists every setting, cited
    "as reported (summary of arXiv 2502.11107)". A reference CSV that is missing leaves its
    patterns out; one that cannot be read is an error naming it.
    """
    ref = (repo_root(ref_dir, "ref_dir") if ref_dir is not None
           else repo_root(None) / "experiments" / "paper_reference")
    cite = "as reported (summary of arXiv 2502.11107)"
    out = {}
    names = ("main_gpt2_cai_harmless.csv", "qwen25.csv", "noise_gpt2_base_medium_cai_harmless.csv")
    if ref_dir is not None and not any((ref / n).is_file() for n in names):
        raise ValueError(f"ref_dir: {ref} holds none of the paper's reference tables {list(names)}")
    main = _read(ref / "main_gpt2_cai_harmless.csv")
    qwen = _read(ref / "qwen25.csv")
    noise = _read(ref / "noise_gpt2_base_medium_cai_harmless.csv")
    if main is not None:
        piv = main.pivot_table(index=["weak", "strong"], columns="loss",
                               values="test_accuracy_pct", sort=False)
        for rev, fwd in (("reverse_kl", "forward_kl"), ("reverse_ce", "forward_ce")):
            d = piv[rev] - piv[fwd]
            extra = ""
            if qwen is not None and rev == "reverse_kl":
                q = qwen.pivot_table(index=["weak", "strong"], columns="loss",
                                     values="test_accuracy_pct", sort=False)
                dq = q["reverse_kl"] - q["forward_kl"]
                extra = "; Qwen2.5: " + ", ".join(f"{a}->{b} {v:+.1f}" for (a, b), v in dq.items())
                d = pd.concat([d, dq])
            out[(1, f"{rev} - {fwd}")] = (
                float(d.mean()), f"{cite}: GPT-2 CAI-Harmless "
                + ", ".join(f"{a}->{b} {v:+.1f}" for (a, b), v in
                            (piv[rev] - piv[fwd]).items()) + extra
                + f"; reverse > forward in {int((d > 0).sum())} of {len(d)}")
        # claim 4: the same strong model with a stronger weak model
        for loss in piv.columns:
            big = piv[loss].xs("gpt2-large", level="strong")
            if {"gpt2", "gpt2-medium"} <= set(big.index):
                v = float(big["gpt2-medium"] - big["gpt2"])
                note = f"{cite}: gpt2-large student, weak gpt2-medium vs gpt2: {v:+.1f}"
                if qwen is not None and loss in set(qwen["loss"]):
                    q = qwen[(qwen.strong == "Qwen2.5-14B") & (qwen.loss == loss)].set_index(
                        "weak")["test_accuracy_pct"]
                    if {"Qwen2.5-3B", "Qwen2.5-7B"} <= set(q.index):
                        vq = float(q["Qwen2.5-7B"] - q["Qwen2.5-3B"])
                        note += f"; Qwen2.5-14B student, weak 7B vs 3B: {vq:+.1f}"
                        v = (v + vq) / 2.0
                out[(4, loss)] = (v, note)
    if main is not None and noise is not None:
        base = main[(main.weak == "gpt2") & (main.strong == "gpt2-medium")].set_index(
            "loss")["test_accuracy_pct"]
        nz = noise.set_index(["noise", "loss"])["test_accuracy_pct"]
        for q in sorted(set(noise["noise"])):
            for rev, fwd in (("reverse_kl", "forward_kl"), ("reverse_ce", "forward_ce")):
                dr = base[rev] - nz[(q, rev)]
                df_ = base[fwd] - nz[(q, fwd)]
                out[(2, f"drop({fwd}) - drop({rev}) @ {q:g}")] = (
                    float(df_ - dr), f"{cite}: gpt2->gpt2-medium, 0 -> {q:.0%} flips: "
                    f"{fwd} drops {df_:.1f}, {rev} drops {dr:.1f} points")
    out[(3, "confidence")] = (math.nan, f"{cite}: claimed; the summary's tables give no "
                                        f"numbers with confidence regularization")
    out[(5, "50%")] = (math.nan, f"{cite}: claimed; the summary's noise table stops at 40 %")
    out[(6, "theorem2")] = (math.nan, f"{cite}: 'consistently validated in experiments' "
                                      f"(no numbers)")
    return out
