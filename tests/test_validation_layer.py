"""The shared validation helpers themselves (``w2s_theory._validation``).

Also checks that the helpers the losses call (``as_tensor_like``, ``check_float_tensor``,
``check_number``, ``check_int``, ``check_choice``) refuse, naming the argument, every
non-numeric ``weak_probs`` kind that torch alone would crash on or cast silently.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import test_bad_inputs as registry
import torch

from w2s_theory._validation import (
    ROW_SUM_ATOL,
    ArgumentTypeError,
    as_float_array,
    as_tensor_like,
    check_choice,
    check_float_tensor,
    check_int,
    check_number,
    check_probs,
    check_rng,
)


def test_argument_type_error_is_both_type_and_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.array(0.5),
                                   torch.tensor(0.5), torch.tensor(0.5, requires_grad=True),
                                   Fraction(1, 2), 1, np.int64(1)])
def test_check_number_accepts_real_numbers(value):
    assert check_number(value, "x") == (1.0 if value == 1 else 0.5)


@pytest.mark.parametrize("value, exc, msg", [
    ("0.5", ArgumentTypeError, "got the string '0.5'"), (True, ArgumentTypeError, "boolean"),
    (np.bool_(False), ArgumentTypeError, "boolean"), (None, ArgumentTypeError, "got None"),
    (1j, ArgumentTypeError, "complex"), (np.array([0.5]), ArgumentTypeError, r"shape \(1,\)"),
    (torch.tensor(True), ArgumentTypeError, "boolean"), (float("nan"), ValueError, "finite"),
    (torch.empty((), device="meta"), ArgumentTypeError, "meta"),
])
def test_check_number_rejects(value, exc, msg):
    with pytest.raises(exc, match=rf"^x: .*{msg}"):
        check_number(value, "x")


def test_check_number_ranges():
    assert check_number(0.0, "x", low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"^x: must lie in \(0, 1\)"):
        check_number(1.0, "x", low=0.0, high=1.0, low_open=True, high_open=True)
    assert check_number(math.inf, "x", allow_inf=True) == math.inf


def test_check_int():
    assert check_int(np.int32(4), "n", low=1) == 4 and check_int(torch.tensor(4), "n") == 4
    for bad in (4.0, True, "4", None, torch.tensor(4.0), np.float64(4)):
        with pytest.raises(ArgumentTypeError, match=r"^n: must be an integer"):
            check_int(bad, "n")
    with pytest.raises(ValueError, match=r"^n: must be an integer in \[1, 3\], got 4"):
        check_int(4, "n", low=1, high=3)


def test_check_rng():
    g = np.random.default_rng(1)
    assert check_rng(g) is g                           # the stream continues
    assert check_rng(np.int64(3)).integers(1000) == np.random.default_rng(3).integers(1000)
    for bad, exc in ((-1, ValueError), (None, ArgumentTypeError), (1.0, ArgumentTypeError),
                     ("0", ArgumentTypeError), (True, ArgumentTypeError),
                     (np.random.RandomState(0), ArgumentTypeError)):
        with pytest.raises(exc, match=r"^rng: "):
            check_rng(bad)


def test_as_float_array_conversions():
    t = torch.tensor([[0.25, 0.75]], requires_grad=True)
    a = as_float_array(t, "p")
    assert a.dtype == np.float64 and a.tolist() == [[0.25, 0.75]]
    assert as_float_array(torch.tensor([0.5], dtype=torch.bfloat16), "p").tolist() == [0.5]
    x = np.array([0.1, 0.9])
    assert as_float_array(x, "p") is x                 # float64 ndarray: no copy
    for bad, msg in ((["0.5"], "array of str"), ([0.5, None], "array of object"),
                     ([[0.5], [0.5, 0.5]], "cannot be converted|array of object"),
                     ("0.5", "string"), (None, "None"), ({"a": 1}, "dict"),
                     (np.ma.masked_array([0.5, 0.5], mask=[1, 0]), "masked")):
        with pytest.raises((TypeError, ValueError), match=rf"^p: .*({msg})"):
            as_float_array(bad, "p")


def test_renormalize_inside_the_tolerance_only_and_never_in_place():
    row = np.array([[0.5, 0.5 + 0.9 * ROW_SUM_ATOL], [0.25, 0.75]])
    before = row.copy()
    out = check_probs(row, "p", renormalize=True)
    assert np.array_equal(row, before)                 # the caller's array is untouched
    assert abs(out[0].sum() - 1.0) <= 2.0 ** -52 and np.array_equal(out[1], row[1])
    assert check_probs(row, "p") is row                # renormalize=False: as given
    with pytest.raises(ValueError, match=r"^p: row 0 sums to"):
        check_probs([[0.5, 0.5 + 1.1 * ROW_SUM_ATOL]], "p", renormalize=True)
    # a k-class entry may exceed 1 by the tolerance, a binary probability may not
    check_probs([[0.0, 1.0 + 0.5 * ROW_SUM_ATOL]], "p")
    with pytest.raises(ValueError, match=r"^p: probability 1\.0000000\d* > 1"):
        check_probs([1.0 + 1e-9], "p")


# ----------------------------------------------------------------------------- the losses' helpers
Z = torch.tensor([0.1, -2.0, 3.0], dtype=torch.float64)


#: weak_probs kinds that torch.as_tensor crashes on, or casts silently
WEAK_KINDS = ("complex", "complex_tensor", "datetime", "dict", "masked", "meta_tensor", "none",
              "numeric_str_list", "object_mixed", "object_none", "str_array", "string",
              "ragged_list")


@pytest.mark.parametrize("label", WEAK_KINDS)
def test_as_tensor_like_refuses_what_the_losses_let_through(label):
    base = registry.BIN if label != "ragged_list" else registry.KCL
    value = dict(registry.prob_bad(base))[label]
    with pytest.raises((TypeError, ValueError), match=r"^weak_probs: "):
        as_tensor_like(value, "weak_probs", Z)


def test_as_tensor_like_keeps_dtype_device_and_gradients():
    y = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float32, requires_grad=True)
    out = as_tensor_like(y, "weak_probs", Z)
    assert out.dtype == Z.dtype and out.device == Z.device and out.requires_grad
    assert as_tensor_like(np.array([0, 1]), "weak_probs", Z).dtype == torch.float64


def test_check_float_tensor():
    assert check_float_tensor(Z, "student_logits") is Z
    for bad, msg in ((torch.empty(3, device="meta"), "meta"), (Z.long(), "floating-point"),
                     (Z.to(torch.complex128), "floating-point"), (Z.tolist(), "torch.Tensor")):
        with pytest.raises(ArgumentTypeError, match=rf"^student_logits: .*{msg}"):
            check_float_tensor(bad, "student_logits")


def test_the_losses_option_cases_are_refused_by_the_helpers():
    with pytest.raises(ArgumentTypeError, match=r"^name: must be a string"):
        check_choice([], "name", ("forward_kl", "reverse_kl"))
    with pytest.raises(ArgumentTypeError, match=r"^base: must be a string"):
        check_choice(["forward_ce"], "base", ("forward_ce",))
    for bad in (-1.0, 2.0):
        with pytest.raises(ValueError, match=r"^threshold: must lie in \[0, 1\]"):
            check_number(bad, "threshold", low=0.0, high=1.0)
    for ok in (np.float32(1e-6), torch.tensor(1e-6)):
        assert check_number(ok, "eps", low=0.0, high=0.5, low_open=True, high_open=True) > 0
