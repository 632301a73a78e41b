"""Head training: batched == one by one; first Adam step against closed-form gradients."""

import numpy as np
import pytest
import torch

from w2s_theory.losses import BalanceThreshold, loss_names, loss_spec
from w2s_theory.training import (
    HeadSpec,
    TrainConfig,
    epoch_orders,
    predict_proba,
    rowwise_quantile,
    step_bounds,
    train_head,
    train_heads,
    train_heads_loop,
)


def _problem(seed=0, n=90, widths=(7, 4)):
    rng = np.random.default_rng(seed)
    groups = [rng.normal(size=(n, d)) for d in widths]
    specs = [HeadSpec(loss, conf, s, g) for loss in loss_names() for conf in (False, True)
             for s in (3, 11) for g in range(len(widths))]
    # soft targets correlated with the first feature, so the heads learn something
    targets = np.stack([1 / (1 + np.exp(-2 * groups[s.group][:, 0] + rng.normal(size=n)))
                        for s in specs])
    return groups, specs, targets


# n = 90 is not a multiple of batch 16 (ragged last batch), two epochs, buffer smaller than
# the data so the ring wraps, min_count reached after 2 steps.
CFG64 = TrainConfig(epochs=2, lr=0.05, dtype="float64", buffer_size=40, min_count=32,
                    warmup_frac=0.2)


def test_batched_equals_one_by_one_float64():
    groups, specs, targets = _problem()
    batched = train_heads(groups, targets, specs, CFG64, device="cpu")
    loop = train_heads_loop(groups, targets, specs, CFG64, device="cpu")
    diffs = [np.abs(a - b).max() for a, b in zip(batched.weights, loop.weights)]
    assert max(diffs) < 1e-12
    # and the comparison is not trivial: heads moved, and differ by loss, confidence, seed
    ws = batched.weights
    assert min(np.abs(w).max() for w in ws) > 1e-2
    by = {(s.loss, s.confidence, s.seed, s.group): w for s, w in zip(specs, ws)}
    assert np.abs(by[("reverse_kl", False, 3, 0)] - by[("forward_kl", False, 3, 0)]).max() > 1e-3
    assert np.abs(by[("reverse_kl", True, 3, 0)] - by[("reverse_kl", False, 3, 0)]).max() > 1e-3
    assert np.abs(by[("reverse_kl", False, 3, 0)] - by[("reverse_kl", False, 11, 0)]).max() > 1e-4
    assert [w.shape for w in ws[:2]] == [(7,), (4,)]


def test_batched_equals_one_by_one_when_batch_exceeds_buffer():
    # full-batch steps (m = n = 90) with a 40-entry buffer: only the last 40 predictions count
    groups, specs, targets = _problem(seed=4)
    cfg = TrainConfig(epochs=3, batch_size=90, lr=0.05, dtype="float64", buffer_size=40,
                      min_count=32, warmup_frac=0.0)
    conf = [b for b, s in enumerate(specs) if s.confidence][:4]
    batched = train_heads(groups, targets[conf], [specs[b] for b in conf], cfg, device="cpu")
    loop = train_heads_loop(groups, targets[conf], [specs[b] for b in conf], cfg, device="cpu")
    assert max(np.abs(a - b).max() for a, b in zip(batched.weights, loop.weights)) < 1e-12


def test_batched_equals_one_by_one_float32():
    groups, specs, targets = _problem(seed=1)
    cfg = TrainConfig(epochs=1, lr=0.02, dtype="float32", buffer_size=40, min_count=32)
    batched = train_heads(groups, targets, specs, cfg, device="cpu")
    loop = train_heads_loop(groups, targets, specs, cfg, device="cpu")
    scale = max(np.abs(w).max() for w in loop.weights)
    diff = max(np.abs(a - b).max() for a, b in zip(batched.weights, loop.weights))
    assert diff < 1e-5 * max(scale, 1.0)
    # predictions agree too
    p_b = predict_proba(groups[0], batched.weights[0])
    p_l = predict_proba(groups[0], loop.weights[0])
    assert np.abs(p_b - p_l).max() < 1e-6


def test_padding_and_batch_composition_do_not_change_a_head_float64():
    groups, specs, targets = _problem(seed=2)
    full = train_heads(groups, targets, specs, CFG64, device="cpu")
    narrow = [b for b, s in enumerate(specs) if s.group == 1][:3]
    alone = train_heads([groups[1]], targets[narrow],
                        [HeadSpec(specs[b].loss, specs[b].confidence, specs[b].seed, 0)
                         for b in narrow], CFG64, device="cpu")
    for j, b in enumerate(narrow):
        assert np.array_equal(alone.weights[j], full.weights[b])


def test_deterministic():
    groups, specs, targets = _problem(seed=3)
    cfg = TrainConfig(dtype="float32", buffer_size=40, min_count=32)
    a = train_heads(groups, targets, specs, cfg, device="cpu")
    b = train_heads(groups, targets, specs, cfg, device="cpu")
    assert all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))


def _first_step_grad(loss, x, y, alpha=0.0):
    """Closed-form gradient at w = 0 (z = 0, p = 1/2) of the mean loss (docs/theory.md): the
    registry's closed form in the logit (checked against independent formulas in
    tests/test_losses.py and tests/test_fdivergences.py), times the features."""
    t = (1 - alpha) * y           # confidence target with hard(p) = 1[1/2 > 1/2] = 0
    if loss in ("forward_ce", "forward_kl", "reverse_kl", "reverse_ce"):   # spelled out here too
        logit = np.log(np.clip(t, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(t, 1e-6, 1 - 1e-6))
        gz = {"reverse_kl": 0.25 * (0.0 - logit), "reverse_ce": -0.25 * logit}.get(loss, 0.5 - t)
    else:
        gz = loss_spec(loss).grad(torch.zeros(len(t), dtype=torch.float64),
                                  torch.as_tensor(t, dtype=torch.float64)).numpy()
    return (gz[:, None] * x).mean(axis=0)


@pytest.mark.parametrize("loss", loss_names())
@pytest.mark.parametrize("conf", [False, True])
def test_first_adam_step_matches_closed_form_gradient(loss, conf):
    # One step over the whole data (n = batch size): Adam's first step is -lr * g / (|g| + eps).
    rng = np.random.default_rng(5)
    n, d = 16, 5
    x = rng.normal(size=(n, d))
    y = rng.uniform(0.05, 0.95, size=n)
    cfg = TrainConfig(epochs=1, batch_size=n, lr=0.1, dtype="float64", warmup_frac=0.0,
                      alpha_max=0.5, buffer_size=n, min_count=n)
    g = _first_step_grad(loss, x, y, alpha=0.5 if conf else 0.0)
    expect = -0.1 * g / (np.abs(g) + cfg.adam_eps)
    got = train_heads([x], y[None, :], [HeadSpec(loss, conf)], cfg, device="cpu").weights[0]
    assert np.abs(got - expect).max() < 1e-9
    one = train_head(x, y, HeadSpec(loss, conf), cfg)
    assert np.abs(one - expect).max() < 1e-9
    if conf:   # the confidence target changes the step, so the check above can fail
        plain = -0.1 * _first_step_grad(loss, x, y) / (np.abs(_first_step_grad(loss, x, y)) + 1e-8)
        assert np.abs(plain - expect).max() > 1e-3


def test_rowwise_quantile_matches_torch_quantile():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(6, 37, generator=g, dtype=torch.float64)
    q = torch.tensor([0.0, 0.13, 0.5, 0.77, 0.999, 1.0], dtype=torch.float64)
    got = rowwise_quantile(v, q)
    ref = torch.stack([torch.quantile(v[i], float(q[i])) for i in range(6)])
    assert torch.equal(got, ref)


def test_buffer_threshold_matches_balance_threshold():
    # the batched ring buffer (via train_heads) reproduces BalanceThreshold's quantile:
    rng = np.random.default_rng(0)
    buf = BalanceThreshold(size=40, min_count=32)
    ring = torch.zeros(40, dtype=torch.float64)
    ybuf = torch.zeros(40, dtype=torch.float64)
    ptr = count = 0
    for _ in range(7):
        p = torch.tensor(rng.uniform(size=16))
        y = torch.tensor(rng.uniform(size=16))
        buf.update(p, y)
        pos = (ptr + torch.arange(16)) % 40
        ring[pos], ybuf[pos] = p, y
        ptr, count = (ptr + 16) % 40, min(count + 16, 40)
        if count >= 32:
            q = 1.0 - ybuf[:count].mean()
            thr = rowwise_quantile(ring[:count][None], q[None])[0]
            assert float(thr) == pytest.approx(buf.threshold, abs=1e-12)


def test_orders_and_bounds():
    o = epoch_orders(10, 3, 7).reshape(3, 10)
    assert all(sorted(r) == list(range(10)) for r in o)
    assert not np.array_equal(o[0], o[1])
    b = step_bounds(10, 3, 4)
    assert b[0] == (0, 4) and b[2] == (8, 10) and b[-1] == (28, 30) and len(b) == 9


def test_training_learns_a_separable_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3))
    y = (x[:, 0] - x[:, 1] > 0).astype(float)
    w = train_heads(x, y[None], [HeadSpec("forward_ce")], TrainConfig(lr=0.05), device="cpu").weights[0]
    acc = np.mean((predict_proba(x, w) > 0.5) == (y == 1))
    assert acc > 0.97


def test_validation_names_the_argument():
    x = np.zeros((20, 3))
    y = np.full((1, 20), 0.5)
    with pytest.raises(ValueError, match="targets"):
        train_heads(x, np.full((2, 20), 0.5), [HeadSpec("forward_kl")])
    with pytest.raises(ValueError, match="targets"):
        train_heads(x, np.full((1, 20), 1.5), [HeadSpec("forward_kl")])
    with pytest.raises(ValueError, match="specs"):
        train_heads(x, y, [HeadSpec("forward_kl", group=1)])
    with pytest.raises(ValueError, match="features"):
        train_heads([x, np.zeros((19, 3))], y, [HeadSpec("forward_kl")])
    with pytest.raises(ValueError, match="loss"):
        HeadSpec("kl")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="min_count"):
        TrainConfig(buffer_size=8, min_count=16)
    with pytest.raises(ValueError, match="num_threads"):
        train_heads(x, y, [HeadSpec("forward_kl")], num_threads=0)


def test_gpu_bench_script_runs_on_cpu(tmp_path):
    """experiments/gpu/bench_heads_batched.py at a tiny size: runs, agrees, writes its JSON."""
    import json
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "gpu" / "bench_heads_batched.py"
    mod = runpy.run_path(str(script), run_name="bench")
    out = tmp_path / "b.json"
    assert mod["main"](["--out", str(out), "--device", "cpu", "--n", "48", "--d", "5",
                        "--groups", "1", "--noise", "2", "--loop-heads", "8", "--repeat", "1",
                        "--threads", "1"]) == 0
    r = json.loads(out.read_text())
    assert r["heads"] == 16 and r["loop_heads_timed"] == 8 and r["loop_extrapolated"]
    assert r["steps_per_head"] == 3 and r["device"] == "cpu"
    assert r["batched_s"] > 0 and r["speedup"] > 0
    assert r["max_abs_diff_weights"] < 1e-5 * max(1.0, r["max_abs_weight"])
