"""What a fine-tuning sweep would do, said before anything loads (``--dry-run``), and the
check that every model and the data can be had (`preflight`).
"""

from __future__ import annotations

from pathlib import Path

from ...config import ConfigError
from ...data import N_ROWS, hh_rlhf_root
from ...features import FEATURE_SETS
from ...hub import parse_spec, resolve_model
from ...models import REGISTRY, get_info, is_installed
from ...sources import describe_source
from .bundle import is_preset
from .config import FinetuneSweepConfig
from .runs import plan_runs
from .weak import weak_finetune_config


def _spec_kind(name: str) -> str:
    """``preset``, ``folder`` or ``hub id`` (+ whether the hub cache holds it); no download."""
    if is_preset(name):
        m = FEATURE_SETS[name].model if name in FEATURE_SETS else name
        return f"preset ({'installed' if m in REGISTRY and is_installed(m) else 'not installed'})"
    if Path(name).expanduser().is_dir():
        return "local folder"
    repo, rev = parse_spec(name)
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, "config.json", revision=rev)
        where = "in the local hub cache" if isinstance(hit, str) else "not in the local hub cache"
    except Exception:  # noqa: BLE001 - only a hint
        where = "hub cache not checked"
    return f"hub id, {where}"


def plan_lines(cfg: FinetuneSweepConfig) -> list[str]:
    """What a sweep would do, without loading a model or the data (``--dry-run``).

    Models (and whether each is a preset, a folder or a hub id in the local cache), data,
    the number of runs per regime and role, and an upper bound on the training tokens
    (every text at ``max_length``; the real count is lower by the texts' length).

    Examples:
        >>> from w2s_theory.pipelines.finetune import FinetuneSweepConfig, SweepSpec
        >>> lines = plan_lines(FinetuneSweepConfig(name="t", sweep=SweepSpec(seeds=(0,))))
        >>> lines[0], lines[-2].split(":")[0]
        ('t: 10 runs (full 5: 1 ceilings + 4 students; head_only 5: 1 ceilings + 4 students)', 'training tokens')
    """

    dc, tr = cfg.data, cfg.train
    runs = plan_runs(cfg, {"subset": dc.subset})
    parts = []
    for regime in cfg.sweep.regimes:
        rr = [r for r in runs if r.regime == regime]
        nc = sum(r.role == "ceiling" for r in rr)
        parts.append(f"{regime} {len(rr)}: {nc} ceilings + {len(rr) - nc} students")
    src = dc.source
    sizes = (src or {}).get("sizes") or ([N_ROWS] * 3 if src is None or src["kind"] == "hh_rlhf"
                                         else None)
    n_w2s = dc.n_train or (sizes[1] if sizes else None)
    n_gt = dc.n_train or (sizes[0] if sizes else None)
    n_te = dc.n_test or (sizes[2] if sizes else None)
    data = (describe_source(src) if src is not None else
            f"HH-RLHF local 4K/4K/4K layout, subset {dc.subset} ({dc.root or 'default root'})")
    texts = 1 if tr.task == "binary" else 2
    weak = (f"{cfg.weak.model} [{_spec_kind(cfg.weak.model)}], fine-tuned on train_gt "
            f"(forward CE, seed {cfg.weak.seed}, lr {weak_finetune_config(cfg).lr:g})"
            if cfg.weak.kind == "finetune" else
            f"{cfg.weak.model} [{_spec_kind(cfg.weak.model)}], logistic head on its features")
    lines = [f"{cfg.name}: {len(runs)} runs ({'; '.join(parts)})",
             f"  weak:   {weak}",
             f"  strong: {cfg.strong} [{_spec_kind(cfg.strong)}], pooling {tr.pooling}",
             f"  data:   {data}; rows train_gt {n_gt or 'all'} / train_w2s {n_w2s or 'all'} / "
             f"test {n_te or 'all'}",
             f"  train:  {tr.epochs} epoch(s), batch {tr.batch_size}, lr "
             f"{'chosen from ' + str(list(cfg.lr_select.grid)) if cfg.lr_select.grid else f'{tr.lr:g}'}"
             f", max length {tr.max_length}, precision {tr.precision}; losses "
             f"{', '.join(cfg.sweep.losses)}; noise {', '.join(f'{a:g}' for a in cfg.sweep.noise)}; "
             f"seeds {', '.join(map(str, cfg.sweep.seeds))}"]
    n_full = sum(r.regime == "full" for r in runs)
    if n_w2s and n_gt:
        per = {"train_gt": n_gt, "train_w2s": n_w2s}
        ceil_split = dc.ceiling_split
        tok = sum(tr.epochs * (per[ceil_split] if r.role == "ceiling" else n_w2s) * texts
                  for r in runs if r.regime == "full") * tr.max_length
        if cfg.weak.kind == "finetune":
            tok += tr.epochs * n_gt * texts * tr.max_length
        if cfg.lr_select.grid:
            tok += len(cfg.lr_select.grid) * tr.epochs * max(n_gt - cfg.lr_select.holdout, 0) \
                * texts * tr.max_length
        lines.append(f"training tokens: at most {tok:,} ({tok / 1e6:.0f}M; {n_full} full runs "
                     f"x {tr.epochs} epoch(s) x {n_w2s} rows x {texts} text(s) x {tr.max_length} "
                     "tokens, + the weak model and lr selection; shorter texts take fewer)")
    else:
        lines.append("training tokens: unknown until the data are read (sizes not in the config)")
    lines.append(f"  out:    {cfg.out_path()} (device {cfg.run.device})")
    return lines


def preflight(cfg: FinetuneSweepConfig) -> None:
    """Check, before anything trains, that every model can be had (a preset installed, a folder
    with ``config.json``, a hub id downloadable or in the local hub cache) and that the
    default data folder exists; a `ConfigError` says what to do."""

    def check(what: str, name: str) -> None:
        m = FEATURE_SETS[name].model if name in FEATURE_SETS else name
        if m in REGISTRY:
            if not is_installed(m):
                raise ConfigError(f"{what}: model preset {m!r} is not installed: run "
                                  f"`{get_info(m).install}`")
            return
        try:
            resolve_model(name)
        except ValueError as exc:
            raise ConfigError(f"{what}: {exc}") from None

    check("strong", cfg.strong)
    check("weak.model", cfg.weak.model)
    if cfg.data.source is None:
        try:
            hh_rlhf_root(cfg.data.root)
        except FileNotFoundError as exc:
            raise ConfigError(f"data.root: {exc}") from None
