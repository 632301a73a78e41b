"""What a sweep needs before it starts: its models, its data and its output folders.

A command calls these before any work (and under ``--dry-run``), so a missing model, a
missing or unusable data file or an output folder that cannot be written is reported at
once, one line each, instead of as a traceback minutes in. Nothing is trained and no
model is loaded:

* a feature set is available when its model's weights are installed or prebuilt features
  cover every split it is read on (`w2s_theory.features.unavailable_reason`);
* a model to fine-tune or to extract features with (`model_problem`) is an installed
  preset of the ladder, a local folder with ``config.json`` and weights, or a hub id
  (``org/name[@revision]``) whose snapshot is in the Hugging Face cache; a hub id not in
  the cache is a problem when ``HF_HUB_OFFLINE`` is set, and is looked up on the hub
  otherwise (an unknown id is reported, a known one is downloaded by the run);
* data: the HH-RLHF files ``<root>/<subset>/<split>.jsonl`` (with enough rows for the
  sizes asked), and every ``[data.source]`` / ``[sources.NAME]`` table read by its own
  loader (files, columns, label values, rows per split: the checks the run makes); a hub
  data set is looked for in the local caches;
* outputs (`output_problem`): every file and folder the command writes can be created
  (no file in the way of a folder, a writable folder, room on the disk).

Each check returns a `Preflight`: the missing models (`MissingModel`), the data problems
and the output problems; `Preflight.lines` is the ``--dry-run`` report, which ends with
``models, data and output folders: all present`` only when there is no problem.
Where each preset's data come from: ``docs/data_sources.md`` (`DATA_DOCS`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import models
from ..config import ConfigError, UserError
from ..data import N_ROWS, SPLITS, VADER_SDIST, DataNotFound, cache_dir, hh_rlhf_root
from ..datasets import dataset_spec
from ..features import FEATURE_SETS, unavailable_reason
from ..hub import parse_spec
from ..sources import load_source
from .real import FeatureBank

__all__ = ["MissingModel", "Preflight", "real", "runnable_pairs", "finetune", "extract",
           "synthetic", "model_problem", "hub_model_problem", "output_problem", "DATA_DOCS",
           "ALL_PRESENT"]

#: The page that says where each preset's data come from (named by every data problem).
DATA_DOCS = "docs/data_sources.md"
#: The last line of a report with no problem.
ALL_PRESENT = "models, data and output folders: all present"
#: Below this many free bytes an output folder counts as full.
MIN_FREE_BYTES = 1 << 20


@dataclass(frozen=True)
class MissingModel:
    """A model a sweep needs and cannot have here.

    Attributes:
        name: as the config names it (a feature set, a preset, a folder or a hub id).
        install: the registry model whose weights package provides it (``None``: not a preset
            of the ladder, nothing to install).
        reason: what is missing, one line.
        needed_by: what needs it (e.g. the ``weak -> strong`` pairs of a real sweep).
        key: the config key that names it (``strong``, ``weak.model``, ``pairs``, ``--model``).
    """
    name: str
    install: str | None
    reason: str
    needed_by: tuple[str, ...] = ()
    key: str = ""


@dataclass
class Preflight:
    """The outcome of a check: missing models, data problems and output problems (all empty =
    ready to run), and notes that are no problem (a hub model the run will download)."""
    missing: list[MissingModel] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.data and not self.outputs

    def install_command(self) -> str | None:
        """``bash scripts/install_models.sh NAMES`` for the installable missing models."""
        names = [m.install for m in self.missing if m.install]
        return models.install_command(names) if names else None

    def missing_names(self) -> set[str]:
        return {m.name for m in self.missing}

    def message(self) -> str:
        """One line saying everything that is wrong (data, outputs, models) and what to do."""
        parts = []
        if self.data:
            parts.append(f"{'; '.join(self.data)} (where the data come from: {DATA_DOCS})")
        parts += self.outputs
        if self.missing:
            n = len(self.missing)
            models = "; ".join(f"{m.key + ': ' if m.key else ''}{m.name}: {m.reason}"
                               for m in self.missing)
            cmd = self.install_command()
            how = f"; install with `{cmd}`" if cmd else ""
            parts.append(f"{n} model{'s' if n != 1 else ''} missing: {models}{how}")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The report of ``--dry-run``: one line per problem, then the install command; the
        last line says ``all present`` only when nothing is missing."""
        out = [f"data problem: {d}" for d in self.data]
        if self.data:
            out.append(f"  where each preset's data come from and how to make them: {DATA_DOCS}")
        out += [f"output problem: {o}" for o in self.outputs]
        if self.missing:
            out.append(f"missing models ({len(self.missing)}):")
            for m in self.missing:
                by = f" [needed by {', '.join(m.needed_by)}]" if m.needed_by else ""
                key = f"{m.key}: " if m.key else ""
                out.append(f"  {key}{m.name}: {m.reason}{by}")
            cmd = self.install_command()
            if cmd:
                out.append(f"install: {cmd}")
        out += [f"note: {n}" for n in self.notes]
        if self.ok and not self.notes:
            out.append(ALL_PRESENT)
        elif self.ok:
            out.append(f"no problem: the run can start (it downloads what the note{'s' if len(self.notes) > 1 else ''} "
                       f"above say{'' if len(self.notes) > 1 else 's'})")
        else:
            n = len(self.data) + len(self.outputs) + len(self.missing)
            out.append(f"{n} problem{'s' if n != 1 else ''}: the run would not start")
        return out


# ----------------------------------------------------------------------------- outputs
def output_problem(path, what: str, *, folder: bool = False) -> str | None:
    """Why ``path`` (a file, or a folder with ``folder=True``) cannot be written, or ``None``.

    Looks only: nothing is created. A file where a folder is needed (on the path or at
    it), a folder where a file is needed, a read-only place and a full disk are problems.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "f").write_text("x")
        1
        >>> output_problem(d / "f" / "out.csv", "--out").endswith("is a file, not a folder: cannot write")
        True
        >>> output_problem(d / "new" / "out.csv", "--out") is None
        True
    """
    p = Path(path).expanduser()
    if p.exists():
        if folder and not p.is_dir():
            return f"{what} {p}: a file is in the way (a folder is needed here)"
        if not folder and p.is_dir():
            return f"{what} {p}: is a folder (a file name is needed here)"
        if not folder and not os.access(p, os.W_OK):
            return f"{what} {p}: the file is not writable"
    anc = p if folder else p.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        return f"{what} {p}: {anc} is a file, not a folder: cannot write"
    if not os.access(anc, os.W_OK | os.X_OK):
        return f"{what} {p}: {anc} is not writable"
    try:
        free = shutil.disk_usage(anc).free
    except OSError:  # pragma: no cover - e.g. a vanished folder
        free = None
    if free is not None and free < MIN_FREE_BYTES:
        return f"{what} {p}: no space left on the disk of {anc} ({free} bytes free)"
    return None


def _outputs(res: Preflight, items) -> None:
    for path, what, folder in items:
        if path is None:
            continue
        why = output_problem(path, what, folder=folder)
        if why is not None:
            res.outputs.append(why)


# ----------------------------------------------------------------------------- models
def _offline() -> bool:
    import huggingface_hub.constants as c

    return bool(c.HF_HUB_OFFLINE)


def hub_model_problem(spec: str, *, cache_dir=None, notes: list | None = None) -> str | None:
    """Why the hub model ``spec`` (``org/name[@revision]``) cannot be had, or ``None``.

    In the Hugging Face cache (``config.json`` and weights in the snapshot): ``None``. Not
    in it: a problem under ``HF_HUB_OFFLINE``; online, the hub is asked whether the id (and
    revision) exists (an unknown id or an unreachable hub is a problem; a known id is a
    note: the run downloads it).
    """
    from huggingface_hub import try_to_load_from_cache


    name, rev = parse_spec(spec)
    import huggingface_hub.constants as c

    where = Path(cache_dir or c.HF_HUB_CACHE)
    try:
        cfg = try_to_load_from_cache(name, "config.json", cache_dir=cache_dir, revision=rev)
    except Exception as exc:  # noqa: BLE001 - HFValidationError and kin: one line
        return f"{spec!r} is not a valid hub id ({type(exc).__name__}: {exc})"
    if isinstance(cfg, str):
        snap = Path(cfg).parent
        if not any(any(snap.glob(p)) for p in ("*.safetensors", "*.bin")):
            return f"the snapshot of {spec!r} in the Hugging Face cache ({snap}) has no weights " \
                   f"(*.safetensors or *.bin)"
        return None
    if _offline():
        return (f"cannot get {spec!r} from the Hugging Face hub: it is not in the local hub cache "
                f"({where}) and HF_HUB_OFFLINE is set: download it once online, or point at a "
                f"local folder")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        HfApi().model_info(name, revision=rev, timeout=15)
    except RevisionNotFoundError:
        return f"cannot get {spec!r} from the Hugging Face hub: it has no revision {rev!r}"
    except RepositoryNotFoundError:
        return (f"cannot get {spec!r} from the Hugging Face hub: no such model (check the id; "
                f"a private or gated model needs `hf auth login`)")
    except Exception as exc:  # noqa: BLE001 - no network, a proxy, ...: one line
        return (f"cannot get {spec!r} from the Hugging Face hub: it is not in the local hub cache "
                f"({where}) and the hub cannot be reached ({type(exc).__name__}); check the "
                f"network, or point at a local folder")
    if notes is not None:
        notes.append(f"{spec}: not in the Hugging Face cache yet; the run downloads it")
    return None


def _folder_problem(p: Path) -> str | None:
    if not (p / "config.json").is_file():
        return f"the folder {p} has no config.json: not a transformers model folder"
    if not any(any(p.glob(pat)) for pat in ("*.safetensors", "*.bin", "*.gguf")):
        return f"the folder {p} has no weights (*.safetensors, *.bin or *.gguf)"
    return None


def model_problem(name: str, *, notes: list | None = None) -> tuple[str | None, str | None]:
    """``(reason, preset to install)`` for a model to load by name (a preset of the ladder, a
    local folder or a hub id); ``(None, None)`` when it can be had. Nothing is loaded."""
    try:
        base, rev = parse_spec(name)
    except ValueError as exc:
        return str(exc), None
    if rev is None and base in models.REGISTRY:
        return (None, None) if models.is_installed(base) else ("its weights are not installed", base)
    p = Path(base).expanduser()
    if rev is None and p.is_dir():
        return _folder_problem(p), None
    if str(base).startswith(("/", ".", "~")):
        return ("neither a folder nor a preset of the ladder nor a hub id (no such folder)",
                None)
    return hub_model_problem(name, notes=notes), None


def _feature_model(res: Preflight, name: str, key: str, needed_by, *, subsets=(), splits=(),
                   texts=False, root=None, cache=None) -> None:
    """A model whose features are read: a feature set (prebuilt or computed) or any model."""
    if name in FEATURE_SETS:
        why = unavailable_reason(name, subsets, splits, texts=texts, root=root, cache=cache)
        if why is not None:
            res.missing.append(MissingModel(name, FEATURE_SETS[name].model, why,
                                            tuple(needed_by), key))
        return
    if name in models.REGISTRY or "/" in name or "@" in name or Path(name).expanduser().is_dir() \
            or name.startswith(("/", ".", "~")):
        _lm(res, name, key, needed_by)
        return
    why = unavailable_reason(name, subsets, splits, texts=texts, root=root, cache=cache)
    if why is not None:
        res.missing.append(MissingModel(name, None, why, tuple(needed_by), key))


def _lm(res: Preflight, name: str, key: str, needed_by) -> None:
    why, install = model_problem(name, notes=res.notes)
    if why is not None:
        res.missing.append(MissingModel(name, install, why, tuple(needed_by), key))


# ----------------------------------------------------------------------------- data
def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _hh_rlhf_files(root, subsets, splits, need: dict | None = None) -> list[str]:
    """Problems with the HH-RLHF files ``subsets`` x ``splits`` (missing folder or files, or
    fewer rows than ``need[split]``)."""
    try:
        base = hh_rlhf_root(root)
    except DataNotFound as exc:
        return [str(exc)]
    absent = [f"{sub}/{sp}.jsonl" for sub in subsets for sp in splits
              if not (base / sub / f"{sp}.jsonl").is_file()]
    if absent:
        return [f"HH-RLHF files not found in {base}: {', '.join(absent)}"]
    out = []
    for sub in subsets:
        for sp in splits:
            want = (need or {}).get(sp)
            if want:
                have = _count_lines(base / sub / f"{sp}.jsonl")
                if want > have:
                    key = "data.n_test" if sp == "test" else "data.n_train"
                    out.append(f"{key}: {want} rows asked, {base / sub / f'{sp}.jsonl'} has {have}")
    return out


def _hub_dataset_problem(spec: dict) -> str | None:
    """A ``hh_rlhf_hub`` source: a local folder must hold the subset's files; a hub data set
    must be in a local cache when ``HF_HUB_OFFLINE`` is set (online, the run downloads it)."""
    path = str(spec.get("path", "Anthropic/hh-rlhf"))
    p = Path(path).expanduser()
    sub = spec.get("data_dir", "harmless-base")
    if p.is_dir():
        d = p / sub if sub else p
        if not d.is_dir() or not any(d.glob("*train*")) or not any(d.glob("*test*")):
            return (f"data.source: {d} has no train and test files (the hub's layout: "
                    f"<path>/<data_dir>/train.jsonl.gz, test.jsonl.gz)")
        return None
    if path.startswith(("/", ".", "~")):
        return f"data.source path: no such folder {path!r}"
    if not _offline():
        return None
    import huggingface_hub.constants as c

    roots = [Path(c.HF_HUB_CACHE) / f"datasets--{path.replace('/', '--')}"]
    try:
        import datasets

        roots.append(Path(datasets.config.HF_DATASETS_CACHE) / path.replace("/", "___"))
    except ImportError:  # pragma: no cover
        pass
    if spec.get("cache_dir"):
        roots.append(Path(spec["cache_dir"]).expanduser() / path.replace("/", "___"))
    if any(r.exists() for r in roots):
        return None
    return (f"data.source: the data set {path!r} is not in a local cache "
            f"({', '.join(map(str, roots))}) and HF_HUB_OFFLINE is set: load it once online, "
            f"or give a local folder in the hub's layout")


@contextlib.contextmanager
def _no_datasets_bars(needed: bool = True):
    """``datasets``' progress bars off while a check reads a source (a check prints its report
    only); the switch is restored afterwards. ``needed=False``: the loader will not reach
    ``datasets`` (e.g. its folder is missing), so it is not imported (2 s)."""
    datasets = None
    if needed:
        try:
            import datasets
        except ImportError:  # pragma: no cover
            datasets = None
    was = datasets is not None and datasets.is_progress_bar_enabled()
    if was:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            datasets.enable_progress_bars()


def _reads_with_datasets(spec: dict) -> bool:
    """Whether loading ``spec`` goes through ``datasets`` (a split-files folder that is not
    there fails before)."""
    kind = spec.get("kind")
    if kind == "split_files":
        return Path(str(spec.get("root", ""))).expanduser().is_dir()
    return kind in ("table", "hh_rlhf_hub")


def _source_problem(where: str, spec: dict, load) -> str | None:
    """Read a source with the loader the run uses (``load()``), or check a hub data set's
    cache; one line per problem (the loader's message names the file and column)."""
    if spec.get("kind") == "hh_rlhf_hub":
        why = _hub_dataset_problem(spec)
        if why:
            return why.replace("data.source", where, 1)
        if not Path(str(spec.get("path", "Anthropic/hh-rlhf"))).expanduser().is_dir():
            return None          # a hub data set: in the cache, or downloaded by the run
    try:
        with _no_datasets_bars(_reads_with_datasets(spec)):
            load()
    except (UserError, ValueError, OSError, ImportError, KeyError, TypeError) as exc:
        msg = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        msg = msg if msg.startswith(where) else f"{where}: {msg}"
        inner = msg[len(where) + 2:]
        return inner if inner.startswith(f"{where}.") or inner.startswith(f"{where}:") else msg
    return None


# ----------------------------------------------------------------------------- commands
def _vader_note(res: Preflight, cache=None) -> None:
    """VADER's ground truth is read from the ``vaderSentiment`` source archive in the cache;
    the run fetches it with pip when it is not there (a note, or a problem offline)."""
    path = cache_dir(cache) / "vader" / VADER_SDIST
    if path.is_file():
        return
    if os.environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on"):
        res.data.append(f"vader: {path} not found and PIP_NO_INDEX is set: run "
                        f"`w2s-theory features fetch-vader` where the package registry is reachable")
    else:
        res.notes.append(f"vader: {path} not there yet; the run fetches it with pip "
                         f"(`w2s-theory features fetch-vader` does it now)")


def real(cfg, *, out=None, cache=None) -> Preflight:
    """Models, data and outputs of a `RealConfig` (``out``: the result table, default the
    config's; ``cache``: the head cache folder, default the config's)."""
    srcs = set(getattr(cfg, "sources", None) or {})      # [sources.NAME]: read by their loader
    pairwise = [d for d in cfg.datasets if d not in srcs and dataset_spec(d).task == "pairwise"]
    other = [d for d in cfg.datasets if d not in pairwise]
    res = Preflight(data=_hh_rlhf_files(cfg.data_root, pairwise, SPLITS) if pairwise else [])
    if "vader" in cfg.datasets and "vader" not in srcs:
        _vader_note(res)
    if srcs:
        bank = FeatureBank(cfg, progress=False)
        for d in cfg.datasets:
            if d in srcs:
                why = _source_problem(f"sources.{d}", cfg.sources[d],
                                      lambda d=d: bank.source_splits(d))
                if why:
                    res.data.append(why)
    by_model: dict[str, list[str]] = {}
    for weak, strong in cfg.pairs:
        for m in (weak, strong):
            by_model.setdefault(m, []).append(f"{weak} -> {strong}")

    for m, pairs in by_model.items():
        before = len(res.missing)
        _feature_model(res, m, "pairs", dict.fromkeys(pairs), subsets=pairwise, splits=SPLITS,
                       root=cfg.features_root)
        if len(res.missing) == before and other and m in FEATURE_SETS:
            why = unavailable_reason(m, texts=True)
            if why is not None:
                res.missing.append(MissingModel(m, FEATURE_SETS[m].model,
                                                f"{why}, for {', '.join(other)}",
                                                tuple(dict.fromkeys(pairs)), "pairs"))
    _outputs(res, [(out if out is not None else cfg.out_path(), "out", False),
                   (cache if cache is not None else cfg.cache_path(), "cache", True)])
    return res


def runnable_pairs(cfg, pre: Preflight) -> tuple[tuple[str, str], ...]:
    """The pairs of a real sweep whose two models are both available."""
    gone = pre.missing_names()
    return tuple(p for p in cfg.pairs if p[0] not in gone and p[1] not in gone)


def _finetune_source(dc) -> None:
    """Read a fine-tuning sweep's ``[data.source]`` and check it as the pipeline does: rows
    per split for ``n_train`` / ``n_test``, two classes for labelled texts."""

    data = load_source(dc.source, where="data.source")
    for sp, key in (("train_gt", "n_train"), ("train_w2s", "n_train"), ("test", "n_test")):
        want, have = getattr(dc, key), len(data[sp])
        if want > have:
            raise ConfigError(f"data.{key}: {want} rows asked, the source's {sp} split has {have}")
    if hasattr(data["test"], "labels"):
        k = int(max(int(np.max(d.labels)) for d in data.values())) + 1
        if k > 2 and dc.source.get("task") != "multiclass":   # multiclass: a k-output head
            raise ConfigError(f"data.source: {k} classes; the fine-tuning pipeline trains a scalar "
                              "reward head (two classes, labels 0/1)")


def finetune(cfg, *, out=None, outputs=()) -> Preflight:
    """Models, data and outputs of a `FinetuneSweepConfig` (``out``: the result table,
    default ``[run] out``; ``outputs``: more ``(path, what, is_folder)`` to check)."""
    dc = cfg.data
    if getattr(dc, "source", None) is None:
        need = {"train_gt": dc.n_train, "train_w2s": dc.n_train, "test": dc.n_test}
        res = Preflight(data=_hh_rlhf_files(dc.root, [dc.subset], SPLITS, need))
    else:
        res = Preflight()
        why = _source_problem("data.source", dc.source, lambda: _finetune_source(dc))
        if why:
            res.data.append(why)
    w = cfg.weak.model
    if getattr(cfg.weak, "kind", "features") == "features":
        # first-rows cuts and other sources are computed from the texts (the prebuilt files
        # hold all 4000 HH-RLHF rows)
        cut = ((dc.n_train or N_ROWS) != N_ROWS or (dc.n_test or N_ROWS) != N_ROWS
               or getattr(dc, "source", None) is not None)
        _feature_model(res, w, "weak.model", ("the weak supervisor",), subsets=[dc.subset],
                       splits=SPLITS, texts=cut)
    else:
        _lm(res, w, "weak.model", ("the weak supervisor (fine-tuned)",))
    _lm(res, cfg.strong, "strong", ("the strong student",))
    run = cfg.run
    _outputs(res, [(out if out is not None else cfg.out_path(), "out", False),
                   (run.checkpoint_dir, "run.checkpoint_dir", True), *outputs])
    return res


def extract(cfg, features_dir=None) -> Preflight:
    """Models, data and the cache folder of an `ExtractConfig`."""
    if cfg.data == "hh_rlhf":
        res = Preflight(data=_hh_rlhf_files(cfg.data_dir, cfg.subsets, cfg.splits))
        _feature_model(res, cfg.model, "model", (f"features of {cfg.data}",),
                       subsets=cfg.subsets, splits=cfg.splits, root=features_dir,
                       cache=cfg.cache)
    else:
        res = Preflight()
        if cfg.data == "vader":
            _vader_note(res, cfg.cache)
        if cfg.data == "source":
            why = _source_problem("features.source", cfg.source,
                                  lambda: load_source(cfg.source, where="features.source"))
            if why:
                res.data.append(why)
        _feature_model(res, cfg.model, "model", (f"features of {cfg.data}",), texts=True)
    _outputs(res, [(cache_dir(cfg.cache), "cache", True)])
    return res


def synthetic(results, figures_dir=None) -> Preflight:
    """The outputs of a synthetic sweep: its result table and figure folder (no models or
    data: instances are drawn)."""
    res = Preflight()
    _outputs(res, [(results, "out", False), (figures_dir, "figures-dir", True)])
    return res
