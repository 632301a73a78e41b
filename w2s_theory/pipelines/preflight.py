"""What a sweep needs before it starts: its models and its data files, checked in milliseconds.

A command calls these before any work (and under ``--dry-run``), so a missing model or data
folder is reported at once, with the install command, instead of as a traceback minutes in.
Only files are looked at (nothing is loaded, torch is not imported):

* a feature set is available when its model's weights are installed or prebuilt features
  cover every split it is read on (`w2s_theory.features.unavailable_reason`);
* a strong model to fine-tune is a local folder or an installed preset of the ladder;
* an HH-RLHF sweep needs ``<data root>/<subset>/<split>.jsonl`` for the splits it reads.

Each check returns a `Preflight`: the missing models (`MissingModel`, with the
registry model to install and the pairs that need it) and the data problems, one line each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MissingModel", "Preflight", "real", "runnable_pairs", "finetune", "extract"]


@dataclass(frozen=True)
class MissingModel:
    """A model a sweep needs and cannot have here.

    Attributes:
        name: as the config names it (a feature set, a preset or a folder).
        install: the registry model whose weights package provides it (``None``: not a preset
            of the ladder, nothing to install).
        reason: what is missing, one line.
        needed_by: what needs it (e.g. the ``weak -> strong`` pairs of a real sweep).
    """

    name: str
    install: str | None
    reason: str
    needed_by: tuple[str, ...] = ()


@dataclass
class Preflight:
    """The outcome of a check: missing models and data problems (empty = ready to run)."""

    missing: list[MissingModel] = field(default_factory=list)
    data: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.data

    def install_command(self) -> str | None:
        """``bash scripts/install_models.sh NAMES`` for the installable missing models."""
        from ..models import install_command

        names = [m.install for m in self.missing if m.install]
        return install_command(names) if names else None

    def missing_names(self) -> set[str]:
        return {m.name for m in self.missing}

    def message(self) -> str:
        """One line saying what is missing and how to get it."""
        if self.data:
            more = f" (and {len(self.data) - 1} more data problems)" if len(self.data) > 1 else ""
            return self.data[0] + more
        n = len(self.missing)
        parts = "; ".join(f"{m.name}: {m.reason}" for m in self.missing)
        cmd = self.install_command()
        how = f"; install with `{cmd}`" if cmd else ""
        return f"{n} model{'s' if n != 1 else ''} missing: {parts}{how}"

    def lines(self) -> list[str]:
        """The report of ``--dry-run``: one line per problem, then the install command."""
        out = [f"data problem: {d}" for d in self.data]
        if self.missing:
            out.append(f"missing models ({len(self.missing)}):")
            for m in self.missing:
                by = f" [needed by {', '.join(m.needed_by)}]" if m.needed_by else ""
                out.append(f"  {m.name}: {m.reason}{by}")
            cmd = self.install_command()
            if cmd:
                out.append(f"install: {cmd}")
        if not out:
            out.append("models and data: all present")
        return out


def _hh_rlhf_files(root, subsets, splits) -> list[str]:
    """Problems with the HH-RLHF files ``subsets`` x ``splits`` (missing folder or files)."""
    from ..data import DataNotFound, hh_rlhf_root

    try:
        base = hh_rlhf_root(root)
    except DataNotFound as exc:
        return [str(exc)]
    absent = [f"{sub}/{sp}.jsonl" for sub in subsets for sp in splits
              if not (base / sub / f"{sp}.jsonl").is_file()]
    if absent:
        return [f"HH-RLHF files not found in {base}: {', '.join(absent)}"]
    return []


def real(cfg) -> Preflight:
    """Models and data of a `RealConfig`."""
    from ..data import SPLITS
    from ..datasets import dataset_spec
    from ..features import FEATURE_SETS, unavailable_reason

    srcs = set(getattr(cfg, "sources", None) or {})      # [sources.NAME]: checked by their loader
    pairwise = [d for d in cfg.datasets if d not in srcs and dataset_spec(d).task == "pairwise"]
    other = [d for d in cfg.datasets if d not in pairwise]
    res = Preflight(data=_hh_rlhf_files(cfg.data_root, pairwise, SPLITS) if pairwise else [])
    by_model: dict[str, list[str]] = {}
    for weak, strong in cfg.pairs:
        for m in (weak, strong):
            by_model.setdefault(m, []).append(f"{weak} -> {strong}")
    for m, pairs in by_model.items():
        why = unavailable_reason(m, pairwise, SPLITS, root=cfg.features_root)
        if why is None and other:
            why = unavailable_reason(m, texts=True)
            why = why and f"{why}, for {', '.join(other)}"
        if why is not None:
            inst = FEATURE_SETS[m].model if m in FEATURE_SETS else None
            res.missing.append(MissingModel(m, inst, why, tuple(dict.fromkeys(pairs))))
    return res


def runnable_pairs(cfg, pre: Preflight) -> tuple[tuple[str, str], ...]:
    """The pairs of a real sweep whose two models are both available."""
    gone = pre.missing_names()
    return tuple(p for p in cfg.pairs if p[0] not in gone and p[1] not in gone)


def finetune(cfg) -> Preflight:
    """Models and data of a `FinetuneSweepConfig`."""
    from ..data import N_ROWS, SPLITS
    from ..features import FEATURE_SETS, unavailable_reason

    dc = cfg.data
    # another data source (hub form, split files, a table) is checked by its own loader,
    # before any training, with the same error style
    res = Preflight(data=_hh_rlhf_files(dc.root, [dc.subset], SPLITS)
                    if getattr(dc, "source", None) is None else [])
    w = cfg.weak.model
    if getattr(cfg.weak, "kind", "features") == "features":
        # first-rows cuts are computed from the texts (the prebuilt files hold all 4000 rows)
        cut = (dc.n_train or N_ROWS) != N_ROWS or (dc.n_test or N_ROWS) != N_ROWS
        why = unavailable_reason(w, [dc.subset], SPLITS, texts=cut)
        if why is not None:
            res.missing.append(MissingModel(w, FEATURE_SETS[w].model if w in FEATURE_SETS else None,
                                            why, ("the weak supervisor ([weak] model)",)))
    else:
        _check_lm(res, w, "the weak supervisor ([weak] model, fine-tuned)")
    _check_lm(res, cfg.strong, "the strong student (strong)")
    return res


def _check_lm(res: Preflight, name: str, role: str) -> None:
    """A model to fine-tune: a local folder, an installed preset, or a hub id (``org/name``,
    ``name@rev`` or a bare hub name): hub ids are resolved by the pipeline before any training
    (through the Hugging Face cache, offline when ``HF_HUB_OFFLINE`` is set)."""
    from ..models import REGISTRY, is_installed

    if Path(name).expanduser().is_dir():
        return
    if name in REGISTRY:
        if not is_installed(name):
            res.missing.append(MissingModel(name, name, "its weights are not installed", (role,)))
    elif str(name).startswith(("/", ".", "~")):
        res.missing.append(MissingModel(name, None, "neither a folder nor a preset of the ladder "
                                        "nor a hub id (no such folder)", (role,)))


def extract(cfg, features_dir=None) -> Preflight:
    """Models and data of a `ExtractConfig`."""
    from ..features import FEATURE_SETS, unavailable_reason

    if cfg.data == "hh_rlhf":
        res = Preflight(data=_hh_rlhf_files(cfg.data_dir, cfg.subsets, cfg.splits))
        why = unavailable_reason(cfg.model, cfg.subsets, cfg.splits, root=features_dir,
                                 cache=cfg.cache)
    else:
        res = Preflight()
        why = unavailable_reason(cfg.model, texts=True)
    if why is not None:
        res.missing.append(MissingModel(cfg.model, FEATURE_SETS[cfg.model].model
                                        if cfg.model in FEATURE_SETS else None, why,
                                        (f"features of {cfg.data}",)))
    return res
