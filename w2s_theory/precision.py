"""Which floating-point precision a training run uses: ``precision = "auto"`` measured per machine.

bf16 autocast is not faster everywhere: on CPUs it is about 1.3x faster than fp32 on an AMD EPYC
Zen 4 (``avx512_bf16``) and 0.5x on a Xeon with the same flag, and emulated (slower still) on
AVX2-only CPUs. So ``"auto"`` does not guess from the flags: `probe` times a matmul-heavy training
step (a Linear-GELU-Linear block, forward and backward, at the fine-tuning sweep's shapes) in fp32
and under bf16 autocast on the device, and `choose_precision` takes bf16 only when it measured
faster by a margin (`MARGIN`, 10 %): ``t_fp32 / t_bf16 >= 1 + margin``. On CUDA ``"auto"`` is bf16
where the GPU supports it (no probe), fp32 otherwise.

A probe runs once per process and key (device, CPU model and its bf16 flags, torch version, torch
threads, shapes, repeats); its times are also kept in the user cache (``precision_probe.json``
under `w2s_theory.data.cache_dir`), so a sweep, and the next sweep on the same machine, probe
once. ``refresh=True`` measures again. The environment variable ``W2S_AUTO_PRECISION``
(``fp32`` or ``bf16``) pins what ``"auto"`` means on a CPU without probing: for the processes
of one multi-process run, or a test suite that must train the same way on every machine.

The module imports torch only inside the functions that time something.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path

from ._validation import check_choice, check_int, check_number
from .atomic_io import atomic_write_text
from .data import cache_dir
from .provenance import cpu_model

__all__ = ["PRECISIONS", "MARGIN", "DEFAULT_SIZE", "DEFAULT_REPEATS", "CLEARLY_SLOWER", "CACHE_FILE", "time_steps",
           "probe", "choose_precision", "choice_from_times", "probe_key", "forget"]

#: what a config may say: ``auto`` (measured, `choose_precision`), or one of the three fixed ones.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: bf16 must be at least this much faster than fp32 (relative) for ``"auto"`` to take it.
MARGIN = 0.10
#: ``(tokens, hidden, intermediate)`` of the probe's block: a 16-pair batch's share of tokens
#: through one MiniLM-L6 feed-forward block (hidden 384, intermediate 1536), the sweep's model.
DEFAULT_SIZE = (512, 384, 1536)
#: timed steps per precision (interleaved; the median is used).
DEFAULT_REPEATS = 5
#: `time_steps` stops early once bf16 is this many times slower than fp32.
CLEARLY_SLOWER = 2.0
#: the probe's file in the user cache (`w2s_theory.data.cache_dir`).
CACHE_FILE = "precision_probe.json"
#: CPU flags that decide bf16 speed (part of the cache key; the model name may be generic).
_BF16_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

_PROCESS: dict[str, dict] = {}   # probe results of this process, by `probe_key`


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return ",".join(f for f in _BF16_FLAGS if f in have)
    except OSError:
        pass
    return ""


def _device_type(device) -> str:
    return str(device).split(":", 1)[0]


def probe_key(device="cpu", *, size=DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS) -> str:
    """The cache key of a probe: device, CPU model and bf16 flags, torch version, torch threads,
    shapes and repeats (a result is reused only where all of these are the same).

    Examples:
        >>> probe_key("cpu").startswith("cpu|")
        True
    """
    import torch

    where = (cpu_model(), _cpu_flags()) if _device_type(device) == "cpu" else ("", "")
    return "|".join([str(device), *where, f"torch {torch.__version__}",
                     f"threads {torch.get_num_threads()}", "x".join(str(s) for s in size),
                     f"repeats {repeats}"])


def time_steps(device="cpu", *, size=DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS,
               seed: int = 0) -> dict[str, list[float]]:
    """Seconds of ``repeats`` training steps of a ``Linear(h, f) -> GELU -> Linear(f, h)`` block on
    ``(n, h)`` inputs (``size = (n, h, f)``), forward and backward, in fp32 and under bf16
    autocast, interleaved (fp32 first on even repeats) after one untimed warm-up step each.

    A device where bf16 autocast fails gets ``inf`` for bf16. When bf16's median is already more
    than `CLEARLY_SLOWER` times fp32's after a repeat, the remaining repeats are skipped (bf16
    emulated on an AVX2 CPU is ~15x slower and would dominate the probe's time).

    Returns:
        ``{"fp32": [s, ...], "bf16": [s, ...]}``, up to ``repeats`` times each.
    """
    import torch

    dev = torch.device(device)
    n, h, f = (check_int(s, "size", low=1) for s in size)
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(h, f), torch.nn.GELU(), torch.nn.Linear(f, h))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
    net = net.to(dev)
    x = torch.randn(n, h, generator=g).to(dev)

    def step(kind: str) -> float:
        t = time.perf_counter()
        net.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=kind == "bf16"):
            y = net(x)
        y.float().square().mean().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t

    out: dict[str, list[float]] = {"fp32": [], "bf16": []}
    kinds = ["fp32", "bf16"]
    try:
        step("bf16")
    except RuntimeError:                  # no bf16 autocast here
        kinds = ["fp32"]
        out["bf16"] = [math.inf] * repeats
    step("fp32")
    for r in range(repeats):
        for kind in (kinds if r % 2 == 0 else kinds[::-1]):
            out[kind].append(step(kind))
        if statistics.median(out["bf16"]) > CLEARLY_SLOWER * statistics.median(out["fp32"]):
            break
    return out


def choice_from_times(fp32_s: float, bf16_s: float, margin: float = MARGIN) -> str:
    """``"bf16"`` when ``fp32_s / bf16_s >= 1 + margin`` (bf16 measured faster by the margin),
    else ``"fp32"``.

    Examples:
        >>> choice_from_times(1.3, 1.0), choice_from_times(1.05, 1.0), choice_from_times(0.5, 1.0)
        ('bf16', 'fp32', 'fp32')
    """
    fp32_s = check_number(fp32_s, "fp32_s", low=0.0)
    bf16_s = check_number(bf16_s, "bf16_s", low=0.0, allow_inf=True)
    margin = check_number(margin, "margin", low=0.0)
    return "bf16" if bf16_s > 0 and fp32_s / bf16_s >= 1.0 + margin else "fp32"


def _read_disk(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def probe(device="cpu", *, size=DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS, margin: float = MARGIN,
          refresh: bool = False, cache: bool = True) -> dict:
    """Measure fp32 against bf16 autocast on ``device`` (`time_steps`) and choose.

    The median seconds per step of each precision decide (`choice_from_times`). Results are kept
    per process and in the user cache under `probe_key` (``cache=False``: neither read nor
    written; ``refresh=True``: measured again and stored).

    Args:
        device: a torch device (``"cpu"``, ``"cuda:0"``, ...).
        size: ``(tokens, hidden, intermediate)`` of the timed block.
        repeats: timed steps per precision (>= 1).
        margin: how much faster bf16 must be (relative) to be chosen.
        refresh: measure even when a result is cached.
        cache: use (read and write) the process and user caches.

    Returns:
        ``{"device", "key", "fp32_s", "bf16_s", "speedup_bf16" (= fp32_s / bf16_s), "margin",
        "choice" ("fp32" | "bf16"), "size", "repeats", "threads", "cpu", "torch", "cached"}``.

    Examples:
        >>> r = probe("cpu", size=(8, 8, 8), repeats=1, cache=False)
        >>> r["choice"] in ("fp32", "bf16"), r["fp32_s"] > 0
        (True, True)
    """
    import torch

    repeats = check_int(repeats, "repeats", low=1)
    size = tuple(check_int(s, "size", low=1) for s in size)
    if len(size) != 3:
        raise ValueError(f"size: (tokens, hidden, intermediate), got {size!r}")
    key = probe_key(device, size=size, repeats=repeats)
    path = cache_dir() / CACHE_FILE
    rec = None
    if cache and not refresh:
        rec = _PROCESS.get(key) or _read_disk(path).get(key)
        if rec is not None:
            rec = {**rec, "cached": True}
    if rec is None:
        t = time_steps(device, size=size, repeats=repeats)
        rec = {"device": str(device), "key": key, "fp32_s": statistics.median(t["fp32"]),
               "bf16_s": statistics.median(t["bf16"]), "size": list(size), "repeats": repeats,
               "threads": torch.get_num_threads(), "cpu": cpu_model(), "torch": torch.__version__,
               "times": t, "cached": False}
        if cache:
            disk = _read_disk(path)
            disk[key] = {k: v for k, v in rec.items() if k != "cached"}
            try:
                atomic_write_text(path, json.dumps(disk, indent=1, default=str))
            except OSError:                # a read-only home: the process cache still holds it
                pass
    if cache:
        _PROCESS[key] = {k: v for k, v in rec.items() if k != "cached"}
    bf = rec["bf16_s"]
    rec["speedup_bf16"] = rec["fp32_s"] / bf if bf > 0 else math.inf
    rec["margin"] = margin
    rec["choice"] = choice_from_times(rec["fp32_s"], bf, margin)
    return rec


def forget() -> None:
    """Drop this process's probe results (the user cache file stays)."""
    _PROCESS.clear()


def choose_precision(precision: str, device="cpu", *, margin: float = MARGIN) -> str:
    """The precision a run uses: ``precision`` itself unless it is ``"auto"``; ``"auto"`` is
    ``"bf16"`` on a CUDA device that supports it (``"fp32"`` on one that does not) and elsewhere
    the `probe`'s choice (bf16 only when measured faster by ``margin``).

    Args:
        precision: one of `PRECISIONS`.
        device: the training device (a torch device or its type, ``"cpu"``, ``"cuda"``).
        margin: see `probe`.

    Returns:
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Examples:
        >>> choose_precision("fp32", "cpu"), choose_precision("bf16", "cpu")
        ('fp32', 'bf16')
    """
    precision = check_choice(precision, "precision", PRECISIONS)
    if precision != "auto":
        return precision
    if _device_type(device) == "cuda":
        import torch

        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    pinned = os.environ.get("W2S_AUTO_PRECISION", "")
    if pinned:
        return check_choice(pinned, "W2S_AUTO_PRECISION", ("fp32", "bf16"))
    return probe(device, margin=margin)["choice"]
