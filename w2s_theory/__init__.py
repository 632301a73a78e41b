"""w2s-theory: numerical checks of weak-to-strong generalization theory.

Submodules (imported on demand; ``import w2s_theory`` does no work and does not import torch):

- `w2s_theory.divergences` – KL, cross-entropy, entropy, total variation, smoothing (numpy).
- `w2s_theory.losses` – the four W2SG student losses and the confidence loss (torch).
- `w2s_theory.bounds` – Lemma 1 and Theorem 2 checks and scalar calculators (numpy).
"""

__version__ = "0.1.0"
__all__ = ["divergences", "losses", "bounds"]
