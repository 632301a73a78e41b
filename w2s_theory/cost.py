r"""Time and memory of a fine-tuning run, estimated from FLOPs (no GPU measurement yet).

FLOPs (Kaplan et al. 2020, Sec. 2.1). A token passing through a transformer of ``L`` layers,
width ``h`` and context ``s`` costs, forward, ``2 N + 4 L s h`` FLOPs, with
``N = 12 L h^2`` the non-embedding parameters (attention ``4 h^2`` + MLP ``8 h^2`` per layer;
embeddings are a lookup) and ``4 L s h`` the attention scores and their weighted sum.
Training costs three forward passes (forward + backward), so a run of ``T`` tokens costs
``3 (2 N + 4 L s h) T``, about ``6 N T``; evaluation ``(2 N + 4 L s h) T``. A preference pair
is two texts. ``tests/test_cost.py`` checks the formula against ``torch``'s FLOP counter.

Memory (training, one device, AdamW, mixed precision with fp32 master weights):
weights 4 B + gradients 4 B + Adam's two moments 8 B per parameter (all parameters,
embeddings included), plus activations ``c s b h L`` bytes for a batch of ``b`` sequences of
``s`` tokens: ``c`` = `ACTIVATION_BYTES` (43 with 16-bit autocast, 74 in fp32) is measured --
the bytes autograd saves for backward in transformers' BERT at MiniLM's shape
(``tests/test_cost.py`` re-measures it), close to Korthikanti et al.'s 34 for 16-bit. Without
the ``s^2`` attention-score term: flash / memory-efficient SDPA kernels on a GPU do not store
the scores (the CPU's math kernel adds ``12 a s / h`` bytes more, ``a`` heads).

Time = FLOPs / throughput. For the CPU the throughput is measured: the effective FLOP/s of the
committed full fine-tuning rows (`measured_flops_per_s`). For GPUs it is an ASSUMED fraction of
the card's dense bf16 peak (`GPUS`) plus an ASSUMED fixed cost per optimiser step (kernel
launches and Python: small models at batch 16 are launch-bound, not FLOP-bound). Every GPU
number is an estimate until a GPU run replaces it.

References: Kaplan et al., arXiv:2001.08361 (2020); Korthikanti et al., arXiv:2205.05198 (2022).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from ._validation import check_int, check_number, check_str
from .presets import REGISTRY, Preset

__all__ = ["FinetuneCost", "GpuSpec", "GPUS", "ACTIVATION_BYTES", "PAPER_STRONG", "estimate_finetune_cost", "non_embedding_params",
           "measured_flops_per_s", "cost_table"]


@dataclass(frozen=True)
class GpuSpec:
    """A GPU's dense bf16 tensor-core peak (FLOP/s, from the vendor's data sheet) and memory."""

    name: str
    peak_flops: float
    memory_gib: float


#: Dense (not 2:4 sparse) bf16 peaks from the data sheets: H100 SXM, A100 SXM 80 GB, L4,
#: GeForce RTX 4090 (fp16/bf16 with fp32 accumulation).
GPUS: dict[str, GpuSpec] = {g.name: g for g in [
    GpuSpec("H100", 989e12, 80), GpuSpec("A100", 312e12, 80), GpuSpec("L4", 121e12, 24),
    GpuSpec("RTX 4090", 165e12, 24)]}


#: Activation bytes saved for backward per token, per unit of width, per layer (measured, see
#: the module doc): 16-bit autocast and fp32.
ACTIVATION_BYTES = {"bf16": 43, "fp32": 74}


#: The strong models of the paper's configs (``experiments/paper/*.toml``, hub ids), as
#: `Preset` records for the estimate: parameters of the reward model (the LM head replaced by a
#: one-output score head) and the non-embedding count from each ``config.json`` (Qwen2.5's
#: wide SwiGLU MLP makes ``12 L h^2`` too small, so it is given).
PAPER_STRONG: dict[str, tuple[Preset, int]] = {p.name: (p, ne) for p, ne in [
    (Preset("gpt2-medium", "decoder", 355_000_000, 1024, 24, "gpt2-medium", hub="openai-community/gpt2-medium"), 302_000_000),
    (Preset("gpt2-large", "decoder", 774_000_000, 1280, 36, "gpt2-large", hub="openai-community/gpt2-large"), 708_000_000),
    (Preset("pythia-410m", "decoder", 354_000_000, 1024, 24, "EleutherAI/pythia-410m", hub="EleutherAI/pythia-410m"), 302_000_000),
    (Preset("pythia-1b", "decoder", 908_000_000, 2048, 16, "EleutherAI/pythia-1b", hub="EleutherAI/pythia-1b"), 805_000_000),
    (Preset("Qwen2.5-1.5B", "decoder", 1_544_000_000, 1536, 28, "Qwen/Qwen2.5-1.5B", hub="Qwen/Qwen2.5-1.5B"), 1_310_000_000),
]}


def non_embedding_params(preset: Preset) -> int:
    """``12 L h^2``: the parameters a token's FLOPs go through (Kaplan et al.).

    Examples:
        >>> non_embedding_params(REGISTRY["all-MiniLM-L6-v2"])
        10616832
    """
    return 12 * preset.n_layers * preset.hidden ** 2


@dataclass(frozen=True)
class FinetuneCost:
    """The estimated cost of one fine-tuning run (see the module doc for the formulas).

    Attributes:
        preset: the preset's name.
        train_tokens, eval_tokens: tokens processed (padding included).
        train_flops, eval_flops: FLOPs of training (forward + backward) and evaluation.
        weights_bytes: weights + gradients + Adam moments (16 B per parameter).
        activation_bytes: activations of one batch at ``max_length``.
        steps: optimiser steps (``ceil(n_pairs / batch_pairs) * epochs``).
    """

    preset: str
    train_tokens: int
    eval_tokens: int
    train_flops: float
    eval_flops: float
    weights_bytes: int
    activation_bytes: int
    steps: int

    @property
    def flops(self) -> float:
        """Training plus evaluation FLOPs."""
        return self.train_flops + self.eval_flops

    @property
    def memory_bytes(self) -> int:
        """Peak training memory: weights, gradients, Adam state and one batch's activations."""
        return self.weights_bytes + self.activation_bytes

    def seconds(self, flops_per_s: float, step_s: float = 0.0) -> float:
        """Wall time: ``flops / flops_per_s + steps * step_s`` (``step_s``: a fixed cost per
        optimiser step -- kernel launches, Python -- that dominates small models on a GPU)."""
        rate = check_number(flops_per_s, "flops_per_s", low=0.0, low_open=True)
        return self.flops / rate + self.steps * check_number(step_s, "step_s", low=0.0)


def _preset(preset) -> Preset:
    if isinstance(preset, Preset):
        p = preset
    else:
        name = check_str(preset, "preset")
        if name in PAPER_STRONG:
            return PAPER_STRONG[name][0]
        if name not in REGISTRY:
            raise ValueError(f"preset: unknown preset {name!r}; known: "
                             f"{', '.join(list(REGISTRY) + list(PAPER_STRONG))}")
        p = REGISTRY[name]
    if p.n_layers == 0:
        raise ValueError(f"preset: {p.name} is static token embeddings: nothing to fine-tune")
    return p


def estimate_finetune_cost(preset, n_pairs: int, max_length: int, *,
                           tokens_per_text: float | None = None, epochs: int = 1,
                           batch_pairs: int = 16, n_eval_pairs: int = 0,
                           activations: str = "bf16", flop_params: int | None = None
                           ) -> FinetuneCost:
    """FLOPs and memory of fully fine-tuning ``preset`` as a reward model on preference pairs.

    Args:
        preset: a preset name (`w2s_theory.presets.REGISTRY` or `PAPER_STRONG`) or a `Preset`.
        n_pairs: training pairs per epoch (two texts each).
        max_length: tokens per text at most (sets the activation memory of a full batch).
        tokens_per_text: mean tokens per text after padding (``None``: ``max_length``, every
            text padded to the cap); at most ``max_length``.
        epochs: passes over the pairs.
        batch_pairs: pairs per optimiser step (``2 * batch_pairs`` sequences per batch).
        n_eval_pairs: pairs scored after training (forward only).
        activations: ``"bf16"`` (16-bit autocast) or ``"fp32"``.
        flop_params: the non-embedding parameters (``None``: `PAPER_STRONG`'s count, else
            `non_embedding_params`).

    Returns:
        a `FinetuneCost`.

    Examples:
        >>> c = estimate_finetune_cost("all-MiniLM-L6-v2", 4000, 128, tokens_per_text=70)
        >>> c.train_tokens, round(c.train_flops / 1e12, 1)
        (560000, 36.8)
    """
    p = _preset(preset)
    n_pairs = check_int(n_pairs, "n_pairs", low=1)
    max_length = check_int(max_length, "max_length", low=1)
    epochs = check_int(epochs, "epochs", low=1)
    batch_pairs = check_int(batch_pairs, "batch_pairs", low=1)
    n_eval_pairs = check_int(n_eval_pairs, "n_eval_pairs", low=0)
    s = float(max_length) if tokens_per_text is None else check_number(
        tokens_per_text, "tokens_per_text", low=1.0, high=float(max_length))
    if activations not in ("bf16", "fp32"):
        raise ValueError(f"activations: 'bf16' or 'fp32', got {activations!r}")
    if flop_params is None:
        flop_params = PAPER_STRONG[p.name][1] if p.name in PAPER_STRONG and \
            PAPER_STRONG[p.name][0] == p else non_embedding_params(p)
    flop_params = check_int(flop_params, "flop_params", low=1)
    forward_per_token = 2 * flop_params + 4 * p.n_layers * s * p.hidden
    train_tokens = round(2 * n_pairs * epochs * s)
    eval_tokens = round(2 * n_eval_pairs * s)
    act = ACTIVATION_BYTES[activations] * max_length * (2 * batch_pairs) * p.hidden * p.n_layers
    return FinetuneCost(p.name, train_tokens, eval_tokens, 3 * forward_per_token * train_tokens,
                        forward_per_token * eval_tokens, 16 * p.params,
                        act,
                        -(-n_pairs // batch_pairs) * epochs)


def measured_flops_per_s(paths, *, machine: str = "AMD EPYC",
                         run_keys=None) -> list[float]:
    """Effective training FLOP/s of committed full fine-tuning rows, one value per row.

    Each row of the result tables (``train_padded_tokens``, ``train_wall_s``, ``strong``,
    ``n_train``, ``epochs``, ``max_length``; ``regime == "full"``) whose ``machine`` contains
    ``machine`` gives ``train_flops / train_wall_s``, the FLOPs from `estimate_finetune_cost`
    at the row's mean padded tokens per text.

    Args:
        paths: result-table CSV files.
        machine: a substring of the rows' ``machine`` column.
        run_keys: only the rows with these ``run_key`` values (``None``: every row); the docs
            name the rows they used, so rows added later do not move their numbers.

    Returns:
        the per-row FLOP/s, in file and row order.
    """
    out = []
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if machine not in row.get("machine", "") or row.get("regime", "full") != "full" \
                        or row.get("strong") not in REGISTRY or float(row["train_wall_s"]) <= 0 \
                        or (run_keys is not None and row.get("run_key") not in run_keys):
                    continue
                n, ep, cap = int(row["n_train"]), int(row["epochs"]), int(row["max_length"])
                per_text = int(row["train_padded_tokens"]) / (2 * n * ep)
                c = estimate_finetune_cost(row["strong"], n, cap, tokens_per_text=per_text,
                                           epochs=ep)
                out.append(c.train_flops / float(row["train_wall_s"]))
    return out


def _fmt_time(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def cost_table(*, n_pairs: int = 4000, n_eval_pairs: int = 4000, max_length: int = 128,
               tokens_per_text: float = 70.0, cpu_flops_per_s: float, gpu_utilisation: float = 0.3,
               gpu_step_s: float = 0.02, presets=None) -> str:
    """The docs' Markdown table: FLOPs, memory and estimated time of one run per preset.

    Args:
        n_pairs, n_eval_pairs, max_length, tokens_per_text: as `estimate_finetune_cost`.
        cpu_flops_per_s: the measured CPU throughput (`measured_flops_per_s`).
        gpu_utilisation: the ASSUMED fraction of each GPU's peak that a run sustains.
        gpu_step_s: the ASSUMED fixed cost of one optimiser step on a GPU (seconds).
        presets: names (``None``: every preset with layers).

    Returns:
        a Markdown table, one row per preset.
    """
    gpu_utilisation = check_number(gpu_utilisation, "gpu_utilisation", low=0.0, high=1.0,
                                   low_open=True)
    names = [p.name for p in REGISTRY.values() if p.n_layers] if presets is None else presets
    params = {**{n: p.params for n, p in REGISTRY.items()},
              **{n: p.params for n, (p, _) in PAPER_STRONG.items()}}
    head = ["preset", "params", "TFLOP (train + eval)", "memory (bf16 / fp32 act.)",
            "CPU, 2-core Zen 3 (measured rate)"] + [f"{g} (est.)" for g in GPUS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        kw = dict(tokens_per_text=tokens_per_text, n_eval_pairs=n_eval_pairs)
        c = estimate_finetune_cost(name, n_pairs, max_length, **kw)
        c32 = estimate_finetune_cost(name, n_pairs, max_length, activations="fp32", **kw)
        cells = [name, f"{params[name] / 1e6:.0f}M", f"{c.flops / 1e12:.0f}",
                 f"{c.memory_bytes / 2**30:.1f} / {c32.memory_bytes / 2**30:.1f} GiB",
                 _fmt_time(c.seconds(cpu_flops_per_s))]
        cells += [_fmt_time(c.seconds(g.peak_flops * gpu_utilisation, gpu_step_s))
                  for g in GPUS.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _committed_rows() -> list[Path]:
    root = Path(__file__).resolve().parent.parent / "experiments" / "results" / "finetune"
    return [root / "cpu_4k_n4000.csv"]


def _main(argv=None) -> None:  # pragma: no cover - prints the docs table
    argparse.ArgumentParser(
        prog="python -m w2s_theory.cost",
        description="Print docs/gpu.md's time and memory tables (estimates from FLOPs and the "
                    "committed CPU rows of experiments/results/finetune/cpu_4k_n4000.csv).").parse_args(argv)
    keys = [r["run_key"] for p in _committed_rows() for r in csv.DictReader(open(p, newline=""))]
    rates = measured_flops_per_s(_committed_rows(), run_keys=keys)
    print(f"<!-- cost-rows: {' '.join(keys)} -->")
    print(f"<!-- {len(rates)} rows, median {statistics.median(rates) / 1e9:.1f} GFLOP/s, range "
          f"{min(rates) / 1e9:.1f}-{max(rates) / 1e9:.1f} -->")
    print(cost_table(cpu_flops_per_s=statistics.median(rates)))
    print()
    print(cost_table(cpu_flops_per_s=statistics.median(rates), max_length=512,
                     presets=list(PAPER_STRONG)))


if __name__ == "__main__":  # pragma: no cover
    _main()
