"""Bad input: every public function rejects it with a ValueError naming the argument.

Cases for probability arrays (binary shorthand and k-class): NaN, +inf, -inf, a negative
entry, an entry > 1, a row not summing to 1 (beyond ``ROW_SUM_ATOL``), an empty array, a
wrong number of dimensions, a single class, a non-numeric array, and a shape mismatch
between arguments. Cases for scalars: gamma outside (0, 1/k], tolerances, risks,
reductions, eps, alpha, warm-up settings. Each message must start with the argument's
name and say what is wrong.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from w2s_theory import bounds, divergences, losses
from w2s_theory._validation import ROW_SUM_ATOL, check_gamma, check_probs, check_scalar

BIN = np.array([0.2, 0.5, 0.7])
KCL = np.array([[0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])

# name -> (function of keyword arrays, array argument names, extra keyword arguments)
NUMPY_FUNCS = {
    "kl": (divergences.kl, ("p", "q"), {}),
    "cross_entropy": (divergences.cross_entropy, ("p", "q"), {}),
    "total_variation": (divergences.total_variation, ("p", "q"), {}),
    "entropy": (divergences.entropy, ("p",), {}),
    "smooth": (divergences.smooth, ("p",), {"gamma": 0.1}),
    "lemma1": (bounds.lemma1, ("f_star", "f_weak", "f_strong"), {"gamma": 0.1}),
    "theorem2": (bounds.theorem2, ("f_star", "f_weak", "f_strong"), {}),
}


def _bad(case: str, base: np.ndarray):
    """A corrupted copy of ``base`` and the regex its error message must contain."""
    a = base.copy()
    if case == "nan":
        a.flat[1] = np.nan
        return a, "contains NaN or inf"
    if case == "inf":
        a.flat[1] = np.inf
        return a, "contains NaN or inf"
    if case == "-inf":
        a.flat[1] = -np.inf
        return a, "contains NaN or inf"
    if case == "negative":
        if a.ndim == 2:
            a[0, 0], a[0, 1] = a[0, 0] - 0.3, a[0, 1] + 0.3       # row still sums to 1
        else:
            a[0] = -0.1
        return a, "negative probability"
    if case == "above_one":
        a.flat[0] = 1.5
        return a, r"probability 1\.5 > 1"
    if case == "row_sum":
        a[1] *= 1 - 10 * ROW_SUM_ATOL
        return a, r"row 1 sums to .*not 1 \(tolerance 1e-06\)"
    if case == "empty":
        return base[:0], "empty array"
    if case == "ndim3":
        return base.reshape(1, *base.shape, 1) if base.ndim == 2 else base.reshape(1, 1, -1), \
            "expected shape"
    if case == "one_class":
        return np.ones((3, 1)), r"need k >= 2 classes"
    if case == "not_numeric":
        return np.array(["a", "b", "c"]), "expected numbers, got an array of str"
    raise AssertionError(case)


ARRAY_CASES = ["nan", "inf", "-inf", "negative", "above_one", "row_sum", "empty", "ndim3",
               "one_class", "not_numeric"]


def _cases():
    for fname, (_, names, _) in NUMPY_FUNCS.items():
        for arg in names:
            for kind, _base in (("binary", BIN), ("kclass", KCL)):
                for case in ARRAY_CASES:
                    if case == "row_sum" and kind == "binary":
                        continue
                    yield pytest.param(fname, arg, kind, case, id=f"{fname}-{arg}-{kind}-{case}")


@pytest.mark.parametrize("fname, arg, kind, case", list(_cases()))
def test_numpy_functions_reject_bad_arrays(fname, arg, kind, case):
    fn, names, extra = NUMPY_FUNCS[fname]
    base = BIN if kind == "binary" else KCL
    bad, msg = _bad(case, base)
    kwargs = {n: (bad if n == arg else base) for n in names}
    with pytest.raises(ValueError, match=rf"^{arg}: .*{msg}"):
        fn(*kwargs.values(), **extra)


@pytest.mark.parametrize("fname", [f for f, (_, names, _) in NUMPY_FUNCS.items() if len(names) > 1])
@pytest.mark.parametrize("kind", ["binary", "kclass"])
def test_numpy_functions_reject_mismatched_shapes(fname, kind):
    fn, names, extra = NUMPY_FUNCS[fname]
    base = BIN if kind == "binary" else KCL
    for arg in names[1:]:
        args = [base[:2] if n == arg else base for n in names]
        with pytest.raises(ValueError, match=rf"^{arg}: shape \(2.*\) does not match {names[0]} shape"):
            fn(*args, **extra)
    if kind == "kclass":  # same n, different k
        args = [base] + [base[:, :2] / base[:, :2].sum(1, keepdims=True)] * (len(names) - 1)
        with pytest.raises(ValueError, match=rf"^{names[1]}: shape \(3, 2\) does not match"):
            fn(*args, **extra)


GAMMA_FUNCS = {
    "smooth": lambda g, base: divergences.smooth(base, g),
    "lemma1": lambda g, base: bounds.lemma1(base, base, base, g),
    "lemma1_constant": lambda g, base: bounds.lemma1_constant(g, 2 if base.ndim == 1 else base.shape[1]),
    "strong_risk_upper_bound": lambda g, base: bounds.strong_risk_upper_bound(
        0.1, 0.01, g, 2 if base.ndim == 1 else base.shape[1]),
    "strong_risk_lower_bound": lambda g, base: bounds.strong_risk_lower_bound(
        0.1, 0.01, g, 2 if base.ndim == 1 else base.shape[1]),
}


@pytest.mark.parametrize("fname", list(GAMMA_FUNCS))
@pytest.mark.parametrize("gamma, kind", [
    (0.0, "binary"), (-1e-3, "binary"), (0.5 + 1e-12, "binary"), (0.34, "kclass"),
    (float("nan"), "binary"), (float("inf"), "kclass"), ("x", "binary"), (None, "kclass"),
])
def test_gamma_outside_zero_one_over_k(fname, gamma, kind):
    base = BIN if kind == "binary" else KCL
    with pytest.raises(ValueError, match=r"^gamma: must (lie in \(0, 1/k\]|be a number)"):
        GAMMA_FUNCS[fname](gamma, base)


@pytest.mark.parametrize("fname", list(GAMMA_FUNCS))
def test_gamma_one_over_k_is_accepted(fname):
    GAMMA_FUNCS[fname](1 / 3, np.full((2, 3), 1 / 3))
    GAMMA_FUNCS[fname](0.5, np.full(2, 0.5))


@pytest.mark.parametrize("kind", ["binary", "kclass"])
@pytest.mark.parametrize("arg", ["f_weak", "f_strong"])
def test_lemma1_rejects_predictions_below_gamma(kind, arg):
    base = BIN if kind == "binary" else KCL
    bad = np.full(3, 1 - 0.05) if kind == "binary" else np.array([[0.05, 0.45, 0.5]] * 3)
    args = {"f_star": base, "f_weak": base, "f_strong": base, arg: bad}
    with pytest.raises(ValueError, match=rf"^{arg}: smallest probability 0\.05\d* is below gamma=0\.1"):
        bounds.lemma1(*args.values(), gamma=0.1)


@pytest.mark.parametrize("kind", ["binary", "kclass"])
@pytest.mark.parametrize("arg", ["f_weak", "f_strong"])
def test_theorem2_rejects_zero_predictions(kind, arg):
    base = BIN if kind == "binary" else KCL
    bad = np.array([0.0, 0.5, 0.7]) if kind == "binary" else np.array([[0.0, 0.5, 0.5]] * 3)
    args = {"f_star": base, "f_weak": base, "f_strong": base, arg: bad}
    with pytest.raises(ValueError, match=rf"^{arg}: probabilities must be strictly positive"):
        bounds.theorem2(*args.values())


@pytest.mark.parametrize("call, name", [
    (lambda: bounds.theorem2(BIN, BIN, BIN, tol=-1e-9), "tol"),
    (lambda: bounds.theorem2(BIN, BIN, BIN, tol=float("nan")), "tol"),
    (lambda: bounds.strong_risk_upper_bound(-0.1, 0.01, 0.1), "risk_weak"),
    (lambda: bounds.strong_risk_upper_bound(float("inf"), 0.01, 0.1), "risk_weak"),
    (lambda: bounds.strong_risk_lower_bound(0.1, -0.01, 0.1), "disagreement"),
    (lambda: bounds.strong_risk_lower_bound(0.1, float("nan"), 0.1), "disagreement"),
    (lambda: bounds.theorem2_risk_bound(float("nan"), 0.1), "risk_weak"),
    (lambda: bounds.theorem2_risk_bound(0.1, -1.0), "d_reverse"),
    (lambda: bounds.lemma1_constant(0.1, k=1), "k"),
    (lambda: bounds.lemma1_constant(0.1, k=2.5), "k"),
    (lambda: bounds.strong_risk_upper_bound(0.1, 0.01, 0.1, k="3"), "k"),
])
def test_scalar_arguments(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        call()


# ----------------------------------------------------------------------------- torch losses
LOSS_FUNCS = {
    **{n: losses.get_loss(n) for n in losses.loss_names()},   # every registered student loss
    "confidence_loss": lambda z, y, **kw: losses.confidence_loss(
        z, y, alpha=0.5, threshold=0.5 if torch.as_tensor(z).ndim == 1 else None, **kw),
}
TZ_BIN, TY_BIN = torch.tensor([0.1, -2.0, 3.0], dtype=torch.float64), torch.tensor(BIN)
TZ_K, TY_K = torch.tensor([[0.1, -2.0, 3.0]] * 3, dtype=torch.float64), torch.tensor(KCL)


def _bad_logits(case, z):
    z = z.clone()
    if case == "nan":
        z.view(-1)[1] = float("nan")
        return z, "contains NaN or inf"
    if case == "inf":
        z.view(-1)[1] = float("inf")
        return z, "contains NaN or inf"
    if case == "list":
        return z.tolist(), "expected a torch.Tensor"
    if case == "int":
        return z.long(), "floating-point"
    if case == "ndim3":
        return z.reshape(1, 1, -1), "expected shape"
    if case == "empty":
        return z[:0], "empty batch"
    if case == "one_class":
        return torch.zeros(3, 1, dtype=torch.float64), r"k >= 2"
    raise AssertionError(case)


@pytest.mark.parametrize("fname", list(LOSS_FUNCS))
@pytest.mark.parametrize("kind", ["binary", "kclass"])
@pytest.mark.parametrize("case", ["nan", "inf", "list", "int", "ndim3", "empty", "one_class"])
def test_losses_reject_bad_logits(fname, kind, case):
    z, y = (TZ_BIN, TY_BIN) if kind == "binary" else (TZ_K, TY_K)
    bad, msg = _bad_logits(case, z)
    with pytest.raises(ValueError, match=rf"^student_logits: .*{msg}"):
        LOSS_FUNCS[fname](bad, y)


WEAK_CASES = [(kind, case) for kind in ("binary", "kclass")
              for case in ("nan", "inf", "-inf", "negative", "above_one", "row_sum", "mismatch")
              if not (kind == "binary" and case == "row_sum")]   # binary labels have no row


@pytest.mark.parametrize("fname", list(LOSS_FUNCS))
@pytest.mark.parametrize("kind, case", WEAK_CASES)
def test_losses_reject_bad_weak_probs(fname, kind, case):
    z, y = (TZ_BIN, BIN) if kind == "binary" else (TZ_K, KCL)
    if case == "mismatch":
        bad, msg = y[:2], "does not match student_logits shape"
    else:
        bad, msg = _bad(case, y)
        msg = {"negative probability": r"entries must lie in \[0, 1\]",
               r"probability 1\.5 > 1": r"entries must lie in \[0, 1\]"}.get(msg, msg)
        msg = msg.replace(r" \(tolerance 1e-06\)", "")
    with pytest.raises(ValueError, match=rf"^weak_probs: .*{msg}"):
        LOSS_FUNCS[fname](z, torch.tensor(bad))


@pytest.mark.parametrize("fname", list(LOSS_FUNCS))
@pytest.mark.parametrize("kw, name", [
    (dict(reduction="batchmean"), "reduction"), (dict(reduction=None), "reduction"),
    (dict(eps=0.0), "eps"), (dict(eps=0.5), "eps"), (dict(eps=-1e-3), "eps"),
    (dict(eps=float("nan")), "eps"), (dict(eps="1e-6"), "eps"),
])
def test_losses_reject_bad_options(fname, kw, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        LOSS_FUNCS[fname](TZ_BIN, TY_BIN, **kw)


@pytest.mark.parametrize("kw, name", [
    (dict(alpha=-0.1), "alpha"), (dict(alpha=1.5), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(alpha="0.5"), "alpha"), (dict(alpha=0.5, base="kl_div"), "base"),
    (dict(alpha=0.5, threshold=float("nan")), "threshold"), (dict(alpha=0.5, threshold="0.5"), "threshold"),
    (dict(alpha=0.5, min_batch=0), "min_batch"), (dict(alpha=0.5, min_batch=2.5), "min_batch"),
])
def test_confidence_loss_rejects_bad_options(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        losses.confidence_loss(TZ_BIN, TY_BIN, **kw)


@pytest.mark.parametrize("args, kw, name", [
    ((-1, 10), {}, "step"), ((1.5, 10), {}, "step"), ((True, 10), {}, "step"),
    ((1, 0), {}, "total_steps"), ((1, 10.0), {}, "total_steps"),
    ((1, 10), dict(alpha_max=1.5), "alpha_max"), ((1, 10), dict(alpha_max=float("nan")), "alpha_max"),
    ((1, 10), dict(warmup_frac=-0.1), "warmup_frac"), ((1, 10), dict(warmup_frac=1.1), "warmup_frac"),
    ((1, 10), dict(warmup_frac=float("nan")), "warmup_frac"),
])
def test_confidence_alpha_rejects_bad_input(args, kw, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        losses.confidence_alpha(*args, **kw)


def test_confidence_alpha_accepts_numpy_integers():
    assert losses.confidence_alpha(np.int64(5), np.int64(100)) == 0.25


@pytest.mark.parametrize("kw, name", [
    (dict(size=0), "size"), (dict(size=4.0), "size"), (dict(size=8, min_count=9), "min_count"),
    (dict(min_count=0), "min_count"),
])
def test_balance_threshold_rejects_bad_settings(kw, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        losses.BalanceThreshold(**kw)


@pytest.mark.parametrize("p, y, name, msg", [
    ([0.1, float("nan")], [0.0, 1.0], "student_probs", "NaN or inf"),
    ([0.1, 1.2], [0.0, 1.0], "student_probs", r"\[0, 1\]"),
    ([0.1, 0.2], [-0.5, 1.0], "weak_probs", r"\[0, 1\]"),
    ([0.1, 0.2], [0.0, 1.0, 1.0], "weak_probs", "does not match"),
    ([[0.1, 0.9]], [[0.0, 1.0]], "student_probs", r"shape \(n,\)"),
    ([], [], "student_probs", "non-empty"),
])
def test_balance_threshold_update_rejects_bad_batches(p, y, name, msg):
    buf = losses.BalanceThreshold(size=8, min_count=2)
    with pytest.raises(ValueError, match=rf"^{name}: .*{msg}"):
        buf.update(torch.tensor(p, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
    assert len(buf) == 0      # nothing half-added


def test_get_loss_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"^name: unknown loss 'kl_div'"):
        losses.get_loss("kl_div")


# ----------------------------------------------------------------------------- helpers themselves
def test_row_sum_tolerance_is_as_documented():
    assert ROW_SUM_ATOL == 1e-6
    ok = np.array([[0.5, 0.5 + 0.9e-6]])
    check_probs(ok, "p")
    with pytest.raises(ValueError, match=re.escape("p: row 0 sums to 1.0000011, not 1 (tolerance 1e-06)")):
        check_probs(np.array([[0.5, 0.5 + 1.1e-6]]), "p")
    check_probs(np.array([[0.5, 0.5 + 1e-3]]), "p", row_sum_atol=1e-2)


def test_check_helpers():
    assert check_gamma(0.25, 4) == 0.25
    assert check_scalar(np.float32(1.5), "x", low=0.0) == 1.5
    with pytest.raises(TypeError, match=r"^x: must be a number, got the string '1\.5'"):
        check_scalar("1.5", "x", low=0.0)
    with pytest.raises(ValueError, match=r"^x: must lie in \(0, inf\]"):
        check_scalar(0.0, "x", low=0.0, low_open=True)
    with pytest.raises(ValueError, match=r"^x: must be finite"):
        check_scalar(float("inf"), "x")
    # lists and float32 arrays are converted to float64
    assert check_probs([0.1, 0.9], "p").dtype == np.float64
    assert check_probs(np.array([[0.25, 0.75]], dtype=np.float32), "p").dtype == np.float64
