"""`FeatureBank`: the standardised features of a real sweep per (data set, model), and the
task's rows and labels per (split, seed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ... import features
from ...config import ConfigError
from ...data import N_ROWS, SPLITS, load_vader, preference_slots
from ...datasets import dataset_spec, feature_cache_tag
from ...fingerprint import digest
from ...kclass import count_classes
from ...protocol import standardize_pairs, standardize_splits
from ...runtime import thread_limit
from ...sources import feature_tag, load_source, source_task
from .config import RealConfig
from .runs import derive_seed

__all__ = ["is_pairwise", "FeatureBank"]


def is_pairwise(dataset: str, sources: dict | None = None) -> bool:
    """Whether a data set is a preference-pair task (else binary labelled texts)."""
    if sources and dataset in sources:

        return source_task(sources[dataset]) == "pairwise"

    return dataset_spec(dataset).task == "pairwise"


class FeatureBank:
    """Standardised features per (data set, model), and the task's rows per (split, seed).

    ``loader(dataset, model, split)``, when given, replaces
    `w2s_theory.features.load_features` for HH-RLHF (it must return
    ``{"chosen": (n, h), "rejected": (n, h)}`` with rows in file order).

    HH-RLHF: ``D = (h_chosen - h_rejected) / sd`` (``sd`` per coordinate over the
    ``train_gt`` chosen and rejected texts); the row of pair ``i`` with slot sign
    ``s_i = +1`` (A = chosen) or ``-1`` is ``s_i D_i`` and its label ``(s_i + 1) / 2``.
    VADER: ``[(h - mu) / sd, 1]`` (a constant feature = the bias), labels from the data.

    ``split`` (`RealConfig.splits`): ``0`` the data set's own split; ``s > 0`` the rows of
    the three splits pooled and dealt out again by `split_index` (same sizes), before the
    standardisation. ``share`` (another bank) re-uses its raw features: banks of several
    splits then read each feature file once.
    """

    def __init__(self, cfg: RealConfig, progress: bool = True,
                 loader: Callable[[str, str, str], dict] | None = None,
                 feature_threads: int | None = None, split: int = 0,
                 share: FeatureBank | None = None):
        self.cfg = cfg
        self.progress = progress
        self.loader = loader
        # torch threads of the feature pass (None: whatever is in force when base() runs)
        self.feature_threads = cfg.feature_threads or feature_threads
        self.split = int(split)
        self._base: dict = {}
        self._texts: dict = {} if share is None else share._texts
        self._sources: dict = {} if share is None else share._sources
        self._raw: dict = {} if share is None else share._raw

    def _pairwise(self, dataset: str) -> bool:
        return is_pairwise(dataset, self.cfg.sources)

    def source_splits(self, dataset: str) -> dict:
        """The three splits of a ``[sources.NAME]`` data set (read once)."""
        if dataset not in self._sources:

            try:
                data = load_source(self.cfg.sources[dataset], where=f"sources.{dataset}")
            except (ValueError, OSError, ImportError) as exc:
                raise ConfigError(f"sources.{dataset}: {exc}") from None
            self._sources[dataset] = data
        return self._sources[dataset]

    # -- raw
    def _text_splits(self, dataset: str) -> dict:
        """The three splits of a registry data set of labelled texts (read once)."""
        if dataset not in self._texts:

            self._texts[dataset] = load_vader(seed=self.cfg.split_seed) if dataset == "vader" \
                else {sp: dataset_spec(dataset).load(sp, seed=self.cfg.split_seed) for sp in SPLITS}
        return self._texts[dataset]

    def n_classes(self, dataset: str) -> int:
        """Classes of a data set's task: 2 for preference pairs, else the largest label + 1."""
        if self._pairwise(dataset):
            return 2

        src = self.source_splits(dataset) if dataset in self.cfg.sources else self._text_splits(dataset)
        return count_classes(*(np.asarray(d.labels) for d in src.values()))

    def _cut(self, x):
        return x if self.cfg.n_rows is None else x[: self.cfg.n_rows]

    def base(self, dataset: str, model: str) -> dict:
        """``{split: float64 (n, d)}`` standardised base rows (see class doc)."""
        key = (dataset, model)
        if key not in self._base:
            with thread_limit(self.feature_threads):
                self._base[key] = self._compute_base(dataset, model)
        return self._base[key]

    def _raw_features(self, dataset: str, model: str) -> dict:
        """Split 0's raw features in file order, read once per bank family:
        ``{split: (chosen, rejected)}`` for preference pairs, ``{split: h}`` otherwise."""

        key = (dataset, model)
        if key in self._raw:
            return self._raw[key]
        if dataset in self.cfg.sources:

            spec = self.cfg.sources[dataset]
            data = self.source_splits(dataset)
            raw = {}
            for sp in SPLITS:
                d = data[sp]
                texts = list(d.chosen) + list(d.rejected) if self._pairwise(dataset) else list(d.texts)
                h = features.features_for_texts(model, texts, dataset=feature_tag(spec, sp),
                                       progress=self.progress)
                raw[sp] = (h[:len(d)], h[len(d):]) if self._pairwise(dataset) else h
        elif self._pairwise(dataset):
            if self.loader is not None:
                got = {sp: self.loader(dataset, model, sp) for sp in SPLITS}
            else:

                got = {sp: features.load_features(model, dataset, sp, root=self.cfg.features_root,
                                         data_root=self.cfg.data_root, progress=self.progress)
                       for sp in SPLITS}
            raw = {sp: (got[sp]["chosen"], got[sp]["rejected"]) for sp in SPLITS}
        else:

            splits = self._text_splits(dataset)
            raw = {sp: features.features_for_texts(
                       model, splits[sp].texts,
                       dataset=feature_cache_tag(dataset, sp, seed=self.cfg.split_seed),
                       progress=self.progress) for sp in SPLITS}
        self._raw[key] = raw
        return raw

    def _sizes(self, dataset: str) -> dict:
        """Rows of each split of split 0 (before any ``n_rows`` cut)."""

        if dataset in self.cfg.sources:
            return {sp: len(self.source_splits(dataset)[sp]) for sp in SPLITS}
        if self._pairwise(dataset):
            got = [raw for (ds, _m), raw in self._raw.items() if ds == dataset]
            return {sp: (len(got[0][sp][0]) if got else N_ROWS) for sp in SPLITS}
        return {sp: len(self._text_splits(dataset)[sp].labels) for sp in SPLITS}

    def split_index(self, dataset: str, sizes: dict | None = None) -> dict | None:
        """``{split: indices into the pool}`` of this bank's split (``None`` for split 0).

        The pool is split 0's ``train_gt``, ``train_w2s`` and ``test`` rows concatenated in
        that order (``sizes``: their row counts; default the data set's); split ``s`` deals a
        seeded permutation of it out with the same sizes.
        """
        if self.split == 0:
            return None

        n = sizes if sizes is not None else self._sizes(dataset)
        perm = np.random.default_rng(derive_seed(self.split, "resplit", dataset)).permutation(
            sum(n.values()))
        out, at = {}, 0
        for sp in SPLITS:
            out[sp] = perm[at:at + n[sp]]
            at += n[sp]
        return out

    def _deal(self, dataset: str, per_split: dict) -> dict:
        """Arrays ``{split: (n_split, ...)}`` of split 0 re-dealt to this bank's split, then cut
        to ``n_rows``."""
        idx = self.split_index(dataset, {sp: len(v) for sp, v in per_split.items()})
        if idx is not None:

            pool = np.concatenate([np.asarray(per_split[sp]) for sp in SPLITS])
            per_split = {sp: pool[idx[sp]] for sp in SPLITS}
        return {sp: self._cut(v) for sp, v in per_split.items()}

    def _compute_base(self, dataset: str, model: str) -> dict:

        raw = self._raw_features(dataset, model)
        if self._pairwise(dataset):
            c = self._deal(dataset, {sp: np.asarray(raw[sp][0], dtype=np.float64) for sp in SPLITS})
            r = self._deal(dataset, {sp: np.asarray(raw[sp][1], dtype=np.float64) for sp in SPLITS})
            return standardize_pairs(c, r, ref="train_gt")
        h = self._deal(dataset, {sp: np.asarray(raw[sp], dtype=np.float64) for sp in SPLITS})
        return standardize_splits(h, ref="train_gt", bias=True)

    def fingerprint(self, dataset: str, model: str) -> str:
        """Content digest of the standardised rows of ``(dataset, model)`` (every split) and,
        for labelled texts, of the labels: what every head and fit on them is computed from
        (features of other model files or other data give another digest). Memoised."""

        memo = self.__dict__.setdefault("_fingerprints", {})
        key = (dataset, model)
        if key not in memo:
            base = self.base(dataset, model)
            labels = {} if self._pairwise(dataset) else {
                sp: self.labels(dataset, sp, 0) for sp in sorted(base)}
            memo[key] = digest({sp: base[sp] for sp in sorted(base)}, labels)
        return memo[key]

    def signs(self, dataset: str, split: str, seed: int, n: int) -> np.ndarray:
        """Slot signs ``+-1`` of a split for a run seed (all ``+1`` for VADER)."""
        if not self._pairwise(dataset):
            return np.ones(n)

        return preference_slots(n, derive_seed(seed, "slots", dataset, split)).astype(np.float64) * 2 - 1

    def labels(self, dataset: str, split: str, seed: int) -> np.ndarray:
        """Integer labels ``(n,)`` of a split under a run seed."""
        if self._pairwise(dataset):
            n = self._n(dataset, split)
            return ((self.signs(dataset, split, seed, n) + 1) / 2).astype(np.int64)

        src = self.source_splits(dataset) if dataset in self.cfg.sources else self._text_splits(dataset)
        return self._deal(dataset, {sp: np.asarray(src[sp].labels) for sp in SPLITS})[split].astype(np.int64)

    def _n(self, dataset: str, split: str = "test") -> int:

        if dataset in self.cfg.sources:
            n = len(self.source_splits(dataset)[split])
        else:
            n = N_ROWS if self._pairwise(dataset) else len(self._text_splits(dataset)["test"].labels)
        return n if self.cfg.n_rows is None else min(n, self.cfg.n_rows)

    def rows(self, dataset: str, model: str, split: str, seed: int) -> np.ndarray:
        """The task's rows ``(n, d)`` (float64) for a run seed."""
        b = self.base(dataset, model)[split]
        return b * self.signs(dataset, split, seed, b.shape[0])[:, None]

    def probs(self, dataset: str, model: str, split: str, seed: int, w: np.ndarray) -> np.ndarray:
        """Head probabilities ``sigmoid(rows @ w)`` (``softmax(rows @ W)``, ``(n, k)``, for a
        k-class head's ``(d, k)`` weights) in float64."""
        from ...training import predict_proba

        b = self.base(dataset, model)[split]
        if np.ndim(w) == 2:                     # labelled texts: no slot signs
            return predict_proba(b, w)
        s = self.signs(dataset, split, seed, b.shape[0])
        z = s * (b @ np.asarray(w, dtype=np.float64))
        return predict_proba(z[:, None], np.ones(1))
