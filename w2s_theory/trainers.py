r"""The weak-to-strong losses as drop-ins for ``torch``, ``transformers.Trainer`` and TRL.

Most reward models and classifiers are trained with Hugging Face's ``Trainer`` or TRL's
``RewardTrainer``. This module hands them any loss of `w2s_theory.losses.get_loss`
(forward/reverse KL/CE, ...) with the weak model's *soft* labels as targets:

* `W2SLoss` -- an ``nn.Module`` (``loss(logits, weak_probs)``), and
  `ConfidenceW2SLoss`, the confidence loss with its class-balance buffer as state;
* `soft_label_loss` -- a ``compute_loss_func`` for ``transformers.Trainer``
  (labels = the weak probabilities), `confidence_loss_func` its confidence-loss twin, and
  `SoftLabelTrainer`, a ``Trainer`` that sets either from a loss name;
* `WeakRewardTrainer` -- TRL's ``RewardTrainer`` trained on weak soft preference
  labels: a data set with ``chosen``, ``rejected`` and ``weak_label`` =
  P(chosen ≻ rejected) under the weak model; the student's Bradley--Terry logit is
  ``z = r(chosen) - r(rejected)`` and the loss is ``loss(z, weak_label)``. With
  ``weak_label = 1`` and ``forward_ce`` it is TRL's own loss ``-log sigmoid(z)``.

Shapes. Binary: logits ``(n,)`` or ``(n, 1)`` with labels ``(n,)`` = P(class 1);
a 2-logit head ``(n, 2)`` with labels ``(n,)`` is read as classes (0, 1). k-class:
logits ``(n, k)`` with labels ``(n, k)`` (rows summing to 1).

Gradient accumulation. ``Trainer`` passes ``num_items_in_batch``, the number of label
*entries* over all micro-batches of one optimiser step, and then does not rescale the
loss; `soft_label_loss` therefore returns ``sum of per-example losses / number
of examples in the step`` (entries divided by ``k`` for ``(n, k)`` labels), so an
accumulated step equals the full-batch mean (tested).

Checks. The registry's losses validate their inputs on every call (finite, in
``[0, 1]``, shapes), which costs a host synchronisation per step on a GPU; pass
``check=False`` to `W2SLoss` / `soft_label_loss` to validate once, on the
first call only (later calls run under `w2s_theory.losses.value_checks` ``(False)``).
Every argument goes through `w2s_theory._validation` and a bad one raises ``TypeError`` /
``ValueError`` whose message starts with its name: logits must be a dense floating-point
tensor; weak labels may be a tensor (gradients kept), a list, a numpy array or a pandas
object, and are never rounded to bfloat16 / float16 logits (the loss is computed in float32);
sparse tensors are refused with the fix (``x.to_dense()``); ``num_items_in_batch`` must be a
positive integer; ``alpha`` must lie in ``[0, 1]`` on every call.

Examples:
    >>> import torch
    >>> from w2s_theory.trainers import W2SLoss
    >>> loss = W2SLoss("reverse_kl")
    >>> round(float(loss(torch.tensor([0.0, 2.0]), torch.tensor([0.5, 0.9]))), 6)
    0.000971

References: Yao et al., arXiv:2502.11107 (2025); Burns et al., arXiv:2312.09390 (2023);
``transformers.Trainer(compute_loss_func=...)``; ``trl.RewardTrainer``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validation import (
    ArgumentTypeError,
    as_float_array,
    check_choice,
    check_float_tensor,
    check_int,
    check_number,
)
from .losses import (
    DEFAULT_EPS,
    BalanceThreshold,
    confidence_alpha,
    confidence_loss,
    get_loss,
    value_checks,
)

# SoftLabelTrainer and WeakRewardTrainer are built on first access (module __getattr__)
__all__ = ["W2SLoss", "ConfidenceW2SLoss", "soft_label_loss", "confidence_loss_func",
           "weak_preference_collator", "align",
           "SoftLabelTrainer", "WeakRewardTrainer"]  # noqa: F822


def _check_name(name, what: str = "loss") -> str:
    if not isinstance(name, str):
        raise ArgumentTypeError(f"{what}: a loss name (str), got {type(name).__name__}")
    try:
        get_loss(name)   # raises naming the valid names
    except ValueError as e:
        raise ValueError(f"{what}: {str(e).split(': ', 1)[1]}") from None
    if name in ("confidence", "confidence_loss"):
        raise ValueError(f"{what}: use ConfidenceW2SLoss for the confidence loss")
    return name


def _check_eps(eps, what: str = "eps") -> float:
    return check_number(eps, what, low=0.0, high=0.5, low_open=True, high_open=True)


def _check_bool(x, what: str) -> bool:
    if not isinstance(x, bool):
        raise ArgumentTypeError(f"{what}: must be True or False, got {x!r} ({type(x).__name__})")
    return x


def _check_logits(logits, name: str) -> torch.Tensor:
    """A dense real floating-point tensor of shape (n,), (n, 1) or (n, k): the model's logits."""
    if not isinstance(logits, torch.Tensor):
        raise ArgumentTypeError(f"{name}: expected the model's logits as a torch.Tensor, got "
                                f"{type(logits).__name__} (logits need a gradient: lists and arrays "
                                f"cannot be trained)")
    if logits.layout != torch.strided:
        raise ArgumentTypeError(f"{name}: a {logits.layout} tensor; pass {name}.to_dense()")
    check_float_tensor(logits, name)
    if logits.ndim not in (1, 2):
        raise ValueError(f"{name}: expected shape (n,), (n, 1) or (n, k), got {tuple(logits.shape)}")
    return logits


def _as_labels(labels, name: str, logits: torch.Tensor) -> torch.Tensor:
    """Soft labels as a tensor on the logits' device, in at least float32 (never the logits'
    narrower dtype); tensors (gradients kept), lists, numpy arrays and pandas objects."""
    wide = torch.float64 if logits.dtype == torch.float64 else torch.float32
    if isinstance(labels, torch.Tensor):
        if labels.layout != torch.strided:
            raise ArgumentTypeError(f"{name}: a {labels.layout} tensor; pass {name}.to_dense()")
        if labels.device.type == "meta":
            raise ArgumentTypeError(f"{name}: a tensor on the 'meta' device, which holds no data")
        if labels.is_complex():
            raise ArgumentTypeError(f"{name}: complex tensor ({labels.dtype}); expected real numbers")
        labels = labels.to(device=logits.device)
        if not torch.is_floating_point(labels) or labels.dtype in (torch.float16, torch.bfloat16):
            labels = labels.to(wide)
        return labels
    arr = as_float_array(labels, name)          # lists, numpy, pandas; strings/objects refused
    arr = np.array(arr, dtype=np.float64 if wide == torch.float64 else np.float32)  # a writable copy
    return torch.from_numpy(arr).to(logits.device)


def _align(logits, labels, lname: str, yname: str) -> tuple[torch.Tensor, torch.Tensor]:
    logits = _check_logits(logits, lname)
    labels = _as_labels(labels, yname, logits)
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if labels.ndim not in (1, 2):
        raise ValueError(f"{yname}: expected shape (n,) or (n, k), got {tuple(labels.shape)}")
    if logits.ndim == 2 and labels.ndim == 1:
        if logits.shape[1] != 2:
            raise ValueError(f"{yname}: shape {tuple(labels.shape)} (binary) for logits of shape "
                             f"{tuple(logits.shape)}: give (n, k) soft labels for k > 2 classes")
        labels = torch.stack([1 - labels, labels], dim=1)
    if labels.shape != logits.shape:
        raise ValueError(f"{yname}: shape {tuple(labels.shape)} does not match {lname} shape "
                         f"{tuple(logits.shape)}")
    return logits, labels


def align(logits: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a model's ``logits`` and soft ``labels`` to the loss's shapes (see the module doc).

    ``labels`` may be a tensor, a list, a numpy array or a pandas object; they come back as a
    tensor on the logits' device in at least float32 (bfloat16 / float16 logits do not round the
    labels).

    Examples:
        >>> import torch
        >>> z, y = align(torch.zeros(3, 1), torch.tensor([0.2, 0.5, 0.9]))
        >>> tuple(z.shape), tuple(y.shape)
        ((3,), (3,))
    """
    return _align(logits, labels, "logits", "labels")


def _renamed(exc: Exception, names: dict[str, str]) -> Exception:
    """``exc`` with the losses' argument name (``student_logits``, ``weak_probs``) replaced by the
    caller's, so that a message starts with the name the caller used."""
    msg = new_msg = str(exc)
    for old, new in names.items():             # the prefix, and a second name in the message
        new_msg = re.sub(rf"\b{re.escape(old)}\b", new, new_msg)
    return type(exc)(new_msg) if new_msg != msg else exc


class W2SLoss(nn.Module):
    """A registered weak-to-strong loss as a module: ``forward(logits, weak_probs)``.

    ``weak_probs`` may be a tensor, a list, a numpy array or a pandas object (see `align`);
    bfloat16 / float16 logits are computed in float32 (`w2s_theory.losses`).

    Args:
        loss: a name of `w2s_theory.losses.get_loss` (not ``confidence``).
        eps: clipping of the weak labels inside ``log y`` (reverse losses), in ``(0, 0.5)``.
        reduction: ``mean`` | ``sum`` | ``none``.
        check: validate every call (``True``) or only the first one (``False``: no host
            synchronisation in the training loop after that).
    """

    def __init__(self, loss: str = "reverse_kl", *, eps: float = DEFAULT_EPS,
                 reduction: str = "mean", check: bool = True):
        super().__init__()
        self.loss = _check_name(loss)
        self.fn = get_loss(loss)
        self.eps = _check_eps(eps)
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum", "none"))
        self.check = _check_bool(check, "check")
        self._checked = False

    def _loss(self, z, y, names: dict[str, str]) -> torch.Tensor:
        try:
            if self.check or not self._checked:
                out = self.fn(z, y, reduction=self.reduction, eps=self.eps)
                self._checked = True
                return out
            with value_checks(False):     # the registry's own closed forms, without the host sync
                return self.fn(z, y, reduction=self.reduction, eps=self.eps)
        except (TypeError, ValueError) as e:
            raise _renamed(e, names) from None

    def forward(self, logits: torch.Tensor, weak_probs) -> torch.Tensor:
        z, y = _align(logits, weak_probs, "logits", "weak_probs")
        return self._loss(z, y, {"student_logits": "logits"})

    def extra_repr(self) -> str:
        return f"loss={self.loss!r}, eps={self.eps:g}, reduction={self.reduction!r}"


class ConfidenceW2SLoss(nn.Module):
    """Burns et al.'s confidence loss with its class-balance buffer as module state.

    ``forward(logits, weak_probs, alpha)``: target ``(1 - alpha) y + alpha 1[p > t]`` with
    ``t`` from the rolling buffer of the last ``buffer_size`` predictions
    (`w2s_theory.losses.BalanceThreshold`); until ``min_count`` are buffered the
    plain ``base`` loss is used. A 2-logit head with binary labels is the binary loss of
    ``z[:, 1] - z[:, 0]``; k-class logits ``(n, k)`` with ``(n, k)`` labels harden to the
    argmax (no buffer: `w2s_theory.losses.confidence_loss`). ``alpha`` must lie in ``[0, 1]``
    on every call.
    """

    def __init__(self, base: str = "forward_ce", *, buffer_size: int = 512, min_count: int = 32,
                 eps: float = DEFAULT_EPS):
        super().__init__()
        self.base = _check_name(base, "base")
        buffer_size = check_int(buffer_size, "buffer_size", low=1)
        min_count = check_int(min_count, "min_count", low=1, high=buffer_size)
        self.buffer = BalanceThreshold(buffer_size, min_count=min_count)
        self.min_count, self.eps = min_count, _check_eps(eps)

    def forward(self, logits: torch.Tensor, weak_probs, alpha: float) -> torch.Tensor:
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
        z, y = _align(logits, weak_probs, "logits", "weak_probs")
        if z.ndim == 2 and z.shape[1] == 2 and np.ndim(weak_probs) == 1:
            z, y = z[:, 1] - z[:, 0], y[:, 1]     # a 2-logit binary head
        try:
            if z.ndim == 2:                       # k classes: argmax hardening, no threshold
                return confidence_loss(z, y, alpha=alpha, base=self.base, reduction="mean",
                                       eps=self.eps)
            if y.shape != z.shape:
                raise ValueError(f"weak_probs: shape {tuple(y.shape)} does not match logits "
                                 f"shape {tuple(z.shape)}")
            self.buffer.update(torch.sigmoid(z.detach()), y)
            if len(self.buffer) < self.min_count:
                return get_loss(self.base)(z, y, reduction="mean", eps=self.eps)
            return confidence_loss(z, y, alpha=alpha, threshold=self.buffer.threshold,
                                   base=self.base, reduction="mean", eps=self.eps)
        except (TypeError, ValueError) as e:
            raise _renamed(e, {"student_logits": "logits", "student_probs": "logits"}) from None


def _check_num_items(n, checked: bool):
    """``num_items_in_batch``: ``None`` or a positive integer (Python, numpy or a 0-d tensor, as
    ``Trainer`` passes it). A tensor's value is read (a host sync) only when ``checked``."""
    name = "num_items_in_batch"
    if n is None:
        return None
    if isinstance(n, torch.Tensor):
        if n.numel() != 1:
            raise ArgumentTypeError(f"{name}: must be a single count, got a tensor of shape "
                                    f"{tuple(n.shape)}")
        if n.dtype == torch.bool or n.is_complex():
            raise ArgumentTypeError(f"{name}: must be a positive integer, got a {n.dtype} tensor")
        if checked:
            v = float(n.detach().reshape(()).cpu())
            if not (v == v and v >= 1 and v == int(v) and v != float("inf")):
                raise ValueError(f"{name}: must be a positive integer, got {n.reshape(()).item()!r}")
        return n.reshape(())
    return check_int(n, name, low=1)


def _logits_of(outputs):
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping) and "logits" in outputs:
        return outputs["logits"]
    if not isinstance(outputs, Mapping) and hasattr(outputs, "logits"):
        return outputs.logits
    raise ArgumentTypeError(f"outputs: expected the model's output with logits (outputs.logits "
                            f"or outputs['logits']) or a logits tensor, got {type(outputs).__name__}")


def confidence_loss_func(alpha: Callable[[], float], *, base: str = "forward_ce",
                         buffer_size: int = 512, min_count: int = 32,
                         eps: float = DEFAULT_EPS) -> Callable:
    """A ``compute_loss_func`` for the confidence loss (`ConfidenceW2SLoss`, one buffer).

    ``alpha()`` is called at every step for the current weight (`SoftLabelTrainer` passes
    `w2s_theory.losses.confidence_alpha` of its step); the micro-batch mean is rescaled to
    ``sum / examples in the step`` under gradient accumulation, as `soft_label_loss`.
    """
    if not callable(alpha):
        raise ArgumentTypeError(f"alpha: a callable returning the current weight, got "
                                f"{type(alpha).__name__}")
    module = ConfidenceW2SLoss(base, buffer_size=buffer_size, min_count=min_count, eps=eps)

    def compute_loss_func(outputs, labels, num_items_in_batch=None):
        logits = _logits_of(outputs)
        n = _check_num_items(num_items_in_batch, checked=True)
        loss = module(logits, labels, alpha())
        if n is None:
            return loss
        per_example = labels.shape[1] if np.ndim(labels) == 2 else 1
        return loss * logits.shape[0] / (n / per_example)

    compute_loss_func.w2s_loss, compute_loss_func.module = "confidence", module
    return compute_loss_func


def soft_label_loss(loss: str = "reverse_kl", *, eps: float = DEFAULT_EPS,
                    check: bool = True) -> Callable:
    """A ``compute_loss_func`` for ``transformers.Trainer``: the labels are the weak soft labels.

    ``fn(outputs, labels, num_items_in_batch=None)`` returns the mean loss over the
    examples of the optimiser step (see the module doc on gradient accumulation). ``outputs`` is
    the model's output (``outputs.logits`` or ``outputs["logits"]``) or the logits tensor itself;
    ``labels`` a tensor, list, numpy array or pandas object; ``num_items_in_batch`` ``None`` or a
    positive integer (a 0-d integer tensor included).

    Examples:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> fn = soft_label_loss("forward_ce")
        >>> out = SimpleNamespace(logits=torch.zeros(2, 1))
        >>> round(float(fn(out, torch.tensor([1.0, 0.0]))), 6)   # log 2
        0.693147
    """
    module = W2SLoss(loss, eps=eps, reduction="none", check=check)

    def compute_loss_func(outputs, labels, num_items_in_batch=None):
        logits = _logits_of(outputs)
        first = module.check or not module._checked
        n = _check_num_items(num_items_in_batch, checked=first)
        logits = _check_logits(logits, "outputs.logits")
        labels = _as_labels(labels, "labels", logits)
        per_example = labels.shape[1] if labels.ndim == 2 else 1   # label entries per example
        z, y = _align(logits, labels, "outputs.logits", "labels")
        per = module._loss(z, y, {"student_logits": "outputs.logits", "weak_probs": "labels"})
        if n is None:
            return per.mean()
        if isinstance(n, torch.Tensor):
            n = n.to(per.device, per.dtype)
        return per.sum() / (n / per_example)

    compute_loss_func.w2s_loss = loss
    return compute_loss_func


def _hf_trainer():
    try:
        from transformers import Trainer
    except ImportError as e:  # pragma: no cover
        raise ImportError("SoftLabelTrainer needs transformers: pip install 'w2s-theory[hf]'") from e
    return Trainer


def _confidence_options(opts) -> dict:
    out = {"base": "forward_ce", "alpha_max": 0.5, "warmup_frac": 0.1, "buffer_size": 512,
           "min_count": 32}
    if opts is not None and not isinstance(opts, Mapping):
        raise ArgumentTypeError(f"w2s_confidence: a mapping, got {type(opts).__name__}")
    for key, value in (opts or {}).items():
        if key not in out:
            raise ValueError(f"w2s_confidence: unknown key {key!r}; the keys are {list(out)}")
        out[key] = value
    confidence_alpha(0, 1, alpha_max=out["alpha_max"], warmup_frac=out["warmup_frac"])  # checks
    return out


def _make_soft_label_trainer():
    Trainer = _hf_trainer()

    class SoftLabelTrainer(Trainer):
        """``transformers.Trainer`` on weak soft labels under a registered loss.

        ``SoftLabelTrainer(model, args, train_dataset=..., w2s_loss="reverse_kl")``: the
        data set's ``labels`` column holds the weak probabilities (``(n,)`` binary or
        ``(n, k)``); everything else is ``Trainer``'s. ``w2s_loss="confidence"`` trains
        Burns et al.'s confidence loss (`confidence_loss_func`) with ``w2s_confidence`` =
        ``{base, alpha_max, warmup_frac, buffer_size, min_count}`` (defaults ``forward_ce``,
        0.5, 0.1, 512, 32) and ``alpha = confidence_alpha(global_step, max_steps, ...)``.
        """

        def __init__(self, *args, w2s_loss: str = "reverse_kl", w2s_eps: float = DEFAULT_EPS,
                     w2s_confidence: Mapping | None = None, **kwargs):
            if kwargs.get("compute_loss_func") is not None:
                raise ValueError("compute_loss_func: set by SoftLabelTrainer from w2s_loss")
            eps = _check_eps(w2s_eps, "w2s_eps")
            if w2s_loss in ("confidence", "confidence_loss"):
                conf = _confidence_options(w2s_confidence)
                ramp = {k: conf.pop(k) for k in ("alpha_max", "warmup_frac")}
                kwargs["compute_loss_func"] = confidence_loss_func(
                    lambda: confidence_alpha(self.state.global_step, max(self.state.max_steps, 1),
                                             **ramp), eps=eps, **conf)
            else:
                _check_name(w2s_loss, "w2s_loss")
                if w2s_confidence is not None:
                    raise ValueError(f"w2s_confidence: only for w2s_loss='confidence', got "
                                     f"w2s_loss={w2s_loss!r}")
                kwargs["compute_loss_func"] = soft_label_loss(w2s_loss, eps=eps)
            super().__init__(*args, **kwargs)
            self.w2s_loss = w2s_loss

    return SoftLabelTrainer


def _weak_labels(examples) -> torch.Tensor:
    """The examples' ``weak_label`` values as a float32 tensor, each checked (a number in [0, 1])."""
    if isinstance(examples, (Mapping, str)) or not isinstance(examples, (list, tuple)) or \
            not examples:
        raise ArgumentTypeError(f"examples: a non-empty list of examples (dicts), got "
                                f"{examples!r:.40} ({type(examples).__name__})")
    vals = []
    for i, e in enumerate(examples):
        if not isinstance(e, Mapping) or "weak_label" not in e:
            raise ValueError(f"weak_label: example {i} has none; every example needs "
                             f"P(chosen > rejected) from the weak model in a 'weak_label' column")
        try:
            vals.append(check_number(e["weak_label"], "weak_label", low=0.0, high=1.0))
        except (TypeError, ValueError) as err:
            raise type(err)(f"weak_label: example {i}: {str(err).split(': ', 1)[1]}") from None
    return torch.tensor(vals, dtype=torch.float32)


def weak_preference_collator(pad_token_id: int):
    """TRL's preference collator that also carries ``weak_label`` (a float tensor ``(n,)``).

    Every example needs a ``weak_label``, a number in ``[0, 1]`` (strings, ``None`` and booleans
    are refused, naming the example).
    """
    pad_token_id = check_int(pad_token_id, "pad_token_id", low=0)
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class _Collator(DataCollatorForPreference):
        def torch_call(self, examples):
            weak = _weak_labels(examples)
            out = super().torch_call(examples)
            out["weak_label"] = weak
            return out

    return _Collator(pad_token_id=pad_token_id)


def _pretokenize(dataset, processing_class, dataset_name: str):
    """Text ``chosen`` / ``rejected`` (and ``prompt``) columns as ``chosen_ids`` / ``rejected_ids``.

    TRL appends the tokenizer's EOS token to every text before tokenizing; a tokenizer without
    one (BERT's, whose encoding already ends in ``[SEP]``) makes it fail with ``TypeError:
    endswith first arg must be str``. Tokenizing here, with the tokenizer's own special tokens,
    makes TRL skip that step. Conversational rows (lists of messages) are left to TRL, which
    does not append an EOS to them.
    """
    from trl.data_utils import get_dataset_column_names, is_conversational

    cols = get_dataset_column_names(dataset)
    if "chosen_ids" in cols and "rejected_ids" in cols:
        return dataset
    missing = [c for c in ("chosen", "rejected") if c not in cols]
    if missing:
        raise ValueError(f"{dataset_name}_dataset: needs 'chosen' and 'rejected' texts (or "
                         f"'chosen_ids' and 'rejected_ids'); missing {missing}, has {list(cols)}")
    first = next(iter(dataset))
    if is_conversational(first):
        return dataset

    def tokenize(example, idx):
        texts = {}
        for col in ("prompt", "chosen", "rejected"):
            v = example.get(col, "") if col == "prompt" else example[col]
            if v is None and col == "prompt":
                v = ""
            if not isinstance(v, str):
                raise ArgumentTypeError(f"{dataset_name}_dataset: column {col!r}, row {idx}: "
                                        f"expected a text (str), got {type(v).__name__}")
            texts[col] = v
        return {f"{c}_ids": processing_class(texts["prompt"] + texts[c])["input_ids"]
                for c in ("chosen", "rejected")}

    return dataset.map(tokenize, with_indices=True)


def _make_weak_reward_trainer():
    try:
        from trl import RewardTrainer
    except ImportError as e:  # pragma: no cover
        raise ImportError("WeakRewardTrainer needs TRL: pip install 'w2s-theory[hf]'") from e

    class WeakRewardTrainer(RewardTrainer):
        """TRL ``RewardTrainer`` on weak soft preference labels under a registered loss.

        The training data set has ``chosen``, ``rejected`` (texts, or ``chosen_ids`` /
        ``rejected_ids``) and ``weak_label`` = P(chosen ≻ rejected) under the weak model.
        The loss of a batch is ``w2s_loss(r(chosen) - r(rejected), weak_label)`` (mean);
        TRL's metrics (reward statistics, accuracy, margin) are kept.
        A tokenizer without an EOS token (BERT's) is handled: its texts are tokenized here with
        the tokenizer's own special tokens instead of TRL's "append EOS, then tokenize".
        Note: TRL *drops* pairs longer than ``args.max_length`` rather than truncating.
        """

        def __init__(self, *args, w2s_loss: str = "reverse_kl", w2s_eps: float = DEFAULT_EPS,
                     **kwargs):
            _check_name(w2s_loss, "w2s_loss")
            self.w2s = W2SLoss(w2s_loss, eps=_check_eps(w2s_eps, "w2s_eps"))
            if kwargs.get("data_collator") is None:
                pc = kwargs.get("processing_class")
                if pc is None or getattr(pc, "pad_token_id", None) is None:
                    raise ValueError("processing_class: a tokenizer with a pad token is needed")
                kwargs["data_collator"] = weak_preference_collator(pc.pad_token_id)
            super().__init__(*args, **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if getattr(processing_class, "eos_token", None) is None and \
                    getattr(args, "eos_token", None) is None:
                dataset = _pretokenize(dataset, processing_class, dataset_name)
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

        def _set_signature_columns_if_needed(self):
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "weak_label"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weak = inputs.pop("weak_label")
            inputs["use_cache"] = False
            outputs = model(**inputs)
            r_c, r_r = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = self.w2s(r_c - r_r, weak.to(r_c.device))
            mode = "train" if self.model.training else "eval"
            with torch.no_grad():
                self._metrics[mode]["accuracy"].append(
                    float(self.accelerator.gather_for_metrics((r_c > r_r).float().mean()).mean()))
                self._metrics[mode]["margin"].append(
                    float(self.accelerator.gather_for_metrics((r_c - r_r).mean()).mean()))
            return (loss, outputs) if return_outputs else loss

    return WeakRewardTrainer


_LAZY: dict[str, Callable[[], Any]] = {"SoftLabelTrainer": _make_soft_label_trainer,
                                       "WeakRewardTrainer": _make_weak_reward_trainer}
_BUILT: dict[str, Any] = {}


def __getattr__(name: str):
    # the Trainer classes are built on first use: importing this module imports neither
    # transformers' Trainer nor TRL
    if name in _LAZY:
        if name not in _BUILT:
            _BUILT[name] = _LAZY[name]()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
