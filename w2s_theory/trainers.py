r"""The weak-to-strong losses as drop-ins for ``torch``, ``transformers.Trainer`` and TRL.

Most reward models and classifiers are trained with Hugging Face's ``Trainer`` or TRL's
``RewardTrainer``. This module hands them any loss of `w2s_theory.losses.get_loss`
(forward/reverse KL/CE, ...) with the weak model's *soft* labels as targets:

* `W2SLoss` -- an ``nn.Module`` (``loss(logits, weak_probs)``), and
  `ConfidenceW2SLoss`, the confidence loss with its class-balance buffer as state;
* `soft_label_loss` -- a ``compute_loss_func`` for ``transformers.Trainer``
  (labels = the weak probabilities), and `SoftLabelTrainer`, a ``Trainer``
  that sets it from a loss name;
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

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .losses import DEFAULT_EPS, BalanceThreshold, confidence_loss, get_loss, value_checks

# SoftLabelTrainer and WeakRewardTrainer are built on first access (module __getattr__)
__all__ = ["W2SLoss", "ConfidenceW2SLoss", "soft_label_loss", "weak_preference_collator", "align",
           "SoftLabelTrainer", "WeakRewardTrainer"]  # noqa: F822

def _check_name(name) -> str:
    if not isinstance(name, str):
        raise ValueError(f"loss: a loss name (str), got {type(name).__name__}")
    get_loss(name)   # raises naming the valid names
    if name in ("confidence", "confidence_loss"):
        raise ValueError("loss: use ConfidenceW2SLoss for the confidence loss")
    return name


def align(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a model's ``logits`` and soft ``labels`` to the loss's shapes (see the module doc).

    Examples:
        >>> import torch
        >>> z, y = align(torch.zeros(3, 1), torch.tensor([0.2, 0.5, 0.9]))
        >>> tuple(z.shape), tuple(y.shape)
        ((3,), (3,))
    """
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    labels = labels.to(device=logits.device)
    if not torch.is_floating_point(labels):
        labels = labels.to(logits.dtype)
    if logits.ndim == 2 and labels.ndim == 1:
        if logits.shape[1] != 2:
            raise ValueError(f"labels: shape {tuple(labels.shape)} (binary) for logits of shape "
                             f"{tuple(logits.shape)}: give (n, k) soft labels for k > 2 classes")
        labels = torch.stack([1 - labels, labels], dim=1)
    return logits, labels


class W2SLoss(nn.Module):
    """A registered weak-to-strong loss as a module: ``forward(logits, weak_probs)``.

    Args:
        loss: a name of `w2s_theory.losses.get_loss` (not ``confidence``).
        eps: clipping of the weak labels inside ``log y`` (reverse losses).
        reduction: ``mean`` | ``sum`` | ``none``.
        check: validate every call (``True``) or only the first one (``False``: no host
            synchronisation in the training loop after that).
    """

    def __init__(self, loss: str = "reverse_kl", *, eps: float = DEFAULT_EPS,
                 reduction: str = "mean", check: bool = True):
        super().__init__()
        self.loss = _check_name(loss)
        self.fn = get_loss(loss)
        self.eps, self.reduction, self.check = float(eps), reduction, bool(check)
        self._checked = False
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction: 'mean', 'sum' or 'none', got {reduction!r}")

    def forward(self, logits: torch.Tensor, weak_probs: torch.Tensor) -> torch.Tensor:
        z, y = align(logits, weak_probs)
        if self.check or not self._checked:
            out = self.fn(z, y, reduction=self.reduction, eps=self.eps)
            self._checked = True
            return out
        with value_checks(False):     # the registry's own closed forms, without the host sync
            return self.fn(z, y, reduction=self.reduction, eps=self.eps)

    def extra_repr(self) -> str:
        return f"loss={self.loss!r}, eps={self.eps:g}, reduction={self.reduction!r}"


class ConfidenceW2SLoss(nn.Module):
    """Burns et al.'s confidence loss with its class-balance buffer as module state.

    ``forward(logits, weak_probs, alpha)``: target ``(1 - alpha) y + alpha 1[p > t]`` with
    ``t`` from the rolling buffer of the last ``buffer_size`` predictions
    (`w2s_theory.losses.BalanceThreshold`); until ``min_count`` are buffered the
    plain ``base`` loss is used. Binary only.
    """

    def __init__(self, base: str = "forward_ce", *, buffer_size: int = 512, min_count: int = 32,
                 eps: float = DEFAULT_EPS):
        super().__init__()
        self.base = _check_name(base)
        self.buffer = BalanceThreshold(buffer_size, min_count=min_count)
        self.min_count, self.eps = int(min_count), float(eps)

    def forward(self, logits: torch.Tensor, weak_probs: torch.Tensor, alpha: float) -> torch.Tensor:
        z, y = align(logits, weak_probs)
        self.buffer.update(torch.sigmoid(z.detach()), y)
        if len(self.buffer) < self.min_count:
            return get_loss(self.base)(z, y, reduction="mean", eps=self.eps)
        return confidence_loss(z, y, alpha=alpha, threshold=self.buffer.threshold, base=self.base,
                               reduction="mean", eps=self.eps)


def soft_label_loss(loss: str = "reverse_kl", *, eps: float = DEFAULT_EPS,
                    check: bool = True) -> Callable:
    """A ``compute_loss_func`` for ``transformers.Trainer``: the labels are the weak soft labels.

    ``fn(outputs, labels, num_items_in_batch=None)`` returns the mean loss over the
    examples of the optimiser step (see the module doc on gradient accumulation).

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
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        per = module(logits, labels)
        if num_items_in_batch is None:
            return per.mean()
        per_example = labels.shape[1] if labels.ndim == 2 else 1
        n = num_items_in_batch / per_example
        if isinstance(n, torch.Tensor):
            n = n.to(per.device, per.dtype)
        return per.sum() / n

    compute_loss_func.w2s_loss = loss
    return compute_loss_func


def _hf_trainer():
    try:
        from transformers import Trainer
    except ImportError as e:  # pragma: no cover
        raise ImportError("SoftLabelTrainer needs transformers: pip install 'w2s-theory[hf]'") from e
    return Trainer


def _make_soft_label_trainer():
    Trainer = _hf_trainer()

    class SoftLabelTrainer(Trainer):
        """``transformers.Trainer`` on weak soft labels under a registered loss.

        ``SoftLabelTrainer(model, args, train_dataset=..., w2s_loss="reverse_kl")``: the
        data set's ``labels`` column holds the weak probabilities (``(n,)`` binary or
        ``(n, k)``); everything else is ``Trainer``'s.
        """

        def __init__(self, *args, w2s_loss: str = "reverse_kl", w2s_eps: float = DEFAULT_EPS,
                     **kwargs):
            if kwargs.get("compute_loss_func") is not None:
                raise ValueError("compute_loss_func: set by SoftLabelTrainer from w2s_loss")
            kwargs["compute_loss_func"] = soft_label_loss(w2s_loss, eps=w2s_eps)
            super().__init__(*args, **kwargs)
            self.w2s_loss = w2s_loss

    return SoftLabelTrainer


def weak_preference_collator(pad_token_id: int):
    """TRL's preference collator that also carries ``weak_label`` (a float tensor ``(n,)``)."""
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class _Collator(DataCollatorForPreference):
        def torch_call(self, examples):
            out = super().torch_call(examples)
            if "weak_label" not in examples[0]:
                raise ValueError("weak_label: every example needs P(chosen > rejected) "
                                 "from the weak model in a 'weak_label' column")
            out["weak_label"] = torch.tensor([float(e["weak_label"]) for e in examples],
                                             dtype=torch.float32)
            return out

    return _Collator(pad_token_id=pad_token_id)


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
        Note: TRL *drops* pairs longer than ``args.max_length`` rather than truncating.
        """

        def __init__(self, *args, w2s_loss: str = "reverse_kl", w2s_eps: float = DEFAULT_EPS,
                     **kwargs):
            self.w2s = W2SLoss(w2s_loss, eps=w2s_eps)
            if kwargs.get("data_collator") is None:
                pc = kwargs.get("processing_class")
                if pc is None or getattr(pc, "pad_token_id", None) is None:
                    raise ValueError("processing_class: a tokenizer with a pad token is needed")
                kwargs["data_collator"] = weak_preference_collator(pc.pad_token_id)
            super().__init__(*args, **kwargs)

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
