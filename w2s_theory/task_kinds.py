"""The one vocabulary of task kinds every data set, source and config uses.

=============  =======================================================================
kind           what a row is, and how the heads learn it
=============  =======================================================================
``pairwise``   a preference pair (chosen, rejected): a Bradley--Terry reward head,
               ``P(A preferred) = sigmoid(r(A) - r(B))``
``binary``     a text with a label in ``{0, 1}``: a one-logit head (both classes occur)
``multiclass`` a text with an integer label ``0 .. k - 1`` (``k >= 2`` classes): a
               ``k``-output softmax head
=============  =======================================================================

Old spellings still read (configs written before the vocabulary was unified):
``preference`` = ``pairwise``, ``classification`` = ``multiclass`` (a two-class table
read as ``multiclass`` is learned exactly as ``binary``; ``binary`` only adds the check
that the labels are 0/1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validation import check_choice, check_str

__all__ = ["TASKS", "OLD_SPELLINGS", "check_task", "check_labels"]

#: the task kinds
TASKS = ("pairwise", "binary", "multiclass")
#: old spelling -> task kind (still accepted where a config may carry it)
OLD_SPELLINGS = {"preference": "pairwise", "classification": "multiclass"}


def check_task(value, name: str = "task") -> str:
    """A task kind of `TASKS` (an old spelling is translated); messages start with ``name``.

    Examples:
        >>> check_task("binary"), check_task("preference"), check_task("classification")
        ('binary', 'pairwise', 'multiclass')
    """
    value = check_str(value, name)
    value = OLD_SPELLINGS.get(value, value)
    return check_choice(value, name, TASKS)


def check_labels(labels: Sequence[int] | np.ndarray, task: str, where: str = "labels") -> int:
    """The number of classes ``k = max label + 1`` of a labelled-text task, checked.

    ``binary``: labels in ``{0, 1}`` and both occur (``k = 2``); ``multiclass``: integer
    labels ``>= 0`` with at least two classes (largest label ``>= 1``).

    Raises:
        ValueError: labels that do not fit the kind (message starts with ``where``).

    Examples:
        >>> check_labels([0, 2, 1, 2], "multiclass"), check_labels([1, 0], "binary")
        (3, 2)
    """
    task = check_choice(task, "task", TASKS[1:])
    y = np.asarray(labels)
    if y.size == 0:
        raise ValueError(f"{where}: no labels")
    top = int(y.max())
    if int(y.min()) < 0 or top < 1:
        raise ValueError(f"{where}: {task} labels are class indices 0..k-1 with at least two "
                         f"classes; got labels from {int(y.min())} to {top}")
    if task == "binary" and top != 1:
        raise ValueError(f"{where}: binary labels are 0/1, got a label {top}; declare the task "
                         f"'multiclass' for k = {top + 1} classes")
    return top + 1
