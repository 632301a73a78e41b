"""Softmax (logistic) linear heads: the model, its exact fit, and the one batched minibatch loop.

* `SoftmaxHead` (``head``): the fitted head and its objective;
* `fit_softmax_head` (``exact``): L-BFGS + Newton to a tight gradient (a solver);
* `fit_head_minibatch` (``minibatch``): the practical regime, one head through
* ``loop.fit_heads``: the one batched k-class loop (``B`` heads x ``n`` samples x ``k``
  classes), also behind `w2s_theory.training.train_heads` (torch at import: not imported here).
"""

from .exact import fit_softmax_head
from .head import SMALL_TORCH_WORK, SoftmaxHead
from .minibatch import fit_head_minibatch

__all__ = ["SoftmaxHead", "fit_softmax_head", "fit_head_minibatch", "SMALL_TORCH_WORK"]
