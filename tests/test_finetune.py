"""Full fine-tuning on transformers' Trainer: order, targets, resume, head-only, k classes, CLI.

Tiny random BERT models (2 layers, hidden 32) keep this file fast; the real
tokenizer (all-MiniLM-L6-v2's) is used where tokenisation is what is tested.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from w2s_theory.finetune import (
    FinetuneConfig,
    TextTask,
    TokenizedTexts,
    batch_order,
    build_model,
    embed_texts,
    make_engine,
    make_targets,
    mean_pool,
    predict,
    real_token_fraction,
    train,
    train_order,
)

ROOT = Path(__file__).resolve().parents[1]

# In pairwise mode r(A) - r(B) does not depend on the head bias nor on the last
# LayerNorm's bias (both shift r(A) and r(B) alike): their gradients are round-off
# that Adam rescales to lr-sized steps, so those two tensors are not compared.
PAIR_INVARIANT = ("head.bias", "encoder.layer.1.output.LayerNorm.bias")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads cost more than they give on a shared CPU
    yield
    torch.set_num_threads(n)


def tiny_backbone(seed: int = 0, vocab: int = 50):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return BertModel(cfg, add_pooling_layer=False)


def random_texts(rng, n, vocab=50, max_len=20):
    lens = rng.integers(1, max_len, n)
    ids = rng.integers(3, vocab, int(lens.sum()))
    return TokenizedTexts(ids.astype(np.uint16), np.concatenate([[0], np.cumsum(lens)]), (1,), (2,), 0)


@pytest.fixture(scope="module")
def pair_task():
    rng = np.random.default_rng(0)
    n = 48
    task = TextTask((random_texts(rng, n), random_texts(rng, n)), rng.integers(0, 2, n).astype(np.int8))
    weak = rng.uniform(0.05, 0.95, n)
    return task, weak


def base_cfg(**kw):
    d = dict(lr=1e-3, max_length=16, precision="fp32", batch_size=8)
    d.update(kw)
    return FinetuneConfig(**d)


def max_weight_diff(a: dict, b: dict, skip=PAIR_INVARIANT) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a if not k.endswith(skip))


# ----------------------------------------------------------------------------- pieces
def hf_lr(t: int, T: int, warm: int, schedule: str = "cosine") -> float:
    """transformers' linear warm-up (from 0) then cosine (or constant), written out."""
    if t < warm:
        return t / max(1, warm)
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (t - warm) / max(1, T - warm)))


def test_batch_order_is_a_seeded_permutation_per_epoch():
    o = batch_order(20, 6, seed=3, epochs=2)
    assert o.shape == (6, 6)                        # 3 whole batches per epoch, 2 dropped rows
    for e in range(2):
        ep = o[3 * e:3 * e + 3].ravel()
        assert len(set(ep)) == 18 and set(ep) <= set(range(20))
    assert (batch_order(20, 6, seed=3, epochs=2) == o).all()
    assert not (batch_order(20, 6, seed=4, epochs=2) == o).all()
    assert not (o[:3] == o[3:]).all()              # a new order each epoch
    with pytest.raises(ValueError, match="batch_size"):
        batch_order(5, 6, seed=0)


def test_make_targets_flips_the_requested_share_of_rows_by_seed():
    y = np.linspace(0.05, 0.95, 40)
    c = FinetuneConfig(noise=0.25, seed=7)
    t = make_targets(y, c)
    changed = np.flatnonzero(~np.isclose(t, y))
    assert changed.size == 10
    np.testing.assert_allclose(t[changed], 1 - y[changed])          # a = -1 flips
    # the same seed gives the same rows whatever the loss; another seed other rows
    assert (make_targets(y, c.replace(loss="reverse_kl")) == t).all()
    assert not (make_targets(y, c.replace(seed=8)) == t).all()
    assert (make_targets(y, c.replace(noise=0.0)) == y).all()


def test_mean_pool_ignores_padding():
    h = torch.randn(2, 5, 3)
    m = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = mean_pool(h, m)
    torch.testing.assert_close(out[0], h[0, :3].mean(0))
    torch.testing.assert_close(out[1], h[1].mean(0))
    h2 = h.clone()
    h2[0, 3:] = 1e6
    torch.testing.assert_close(mean_pool(h2, m), out)


def test_tokenized_batch_equals_the_tokenizer_with_truncation():
    from transformers import AutoTokenizer

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    texts = ["\n\nHuman: a short one", "word " * 40 + "and the final reply matters most",
             "Assistant: mid length text here, with punctuation!"]
    t = TokenizedTexts.from_texts(tok, texts)
    assert t.prefix == (tok.cls_token_id,) and t.suffix == (tok.sep_token_id,)
    for side in ("left", "right"):
        ids, mask = t.batch([0, 1, 2], max_length=16, truncation_side=side)
        old = tok.truncation_side
        tok.truncation_side = side
        try:
            ref = tok(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
        finally:
            tok.truncation_side = old
        assert torch.equal(ids, ref["input_ids"]), side
        assert torch.equal(mask, ref["attention_mask"]), side
    # left truncation keeps the end of the dialogue
    assert tok.decode(t.batch([1], 16, "left")[0][0]).endswith("matters most [SEP]")


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="loss"):
        FinetuneConfig(loss="kl")
    with pytest.raises(ValueError, match="grad_accum"):
        FinetuneConfig(batch_size=16, grad_accum=3)
    with pytest.raises(ValueError, match=r"^\[train\] unknown key 'learning_rate'"):
        FinetuneConfig.from_dict({"lr": 1e-5, "learning_rate": 1})
    with pytest.raises(ValueError, match="truncation_side"):
        FinetuneConfig(truncation_side="middle")


# ----------------------------------------------------------------------------- model
def test_pair_logit_is_reward_difference_and_padding_free(pair_task):
    task, _ = pair_task
    c = base_cfg()
    m = build_model(tiny_backbone(), c).eval()
    p = predict(m, task, c)
    # independent: score each text alone (no padding at all), then sigmoid(r(A) - r(B))
    with torch.no_grad():
        r = [[float(m(*t.batch([i], c.max_length))) for i in range(12)] for t in task.inputs]
    ref = 1 / (1 + np.exp(-(np.array(r[0]) - np.array(r[1]))))
    np.testing.assert_allclose(p[:12], ref, atol=1e-6)


# ----------------------------------------------------------------------------- training
def test_gradient_accumulation_equals_full_batch(pair_task):
    task, weak = pair_task
    bb = tiny_backbone()
    c1, c2 = base_cfg(loss="reverse_kl", seed=5), base_cfg(loss="reverse_kl", seed=5, grad_accum=4)
    m1, m2 = build_model(bb, c1), build_model(bb, c2)
    s1 = train(m1, task, weak, c1, progress=False)
    s2 = train(m2, task, weak, c2, progress=False)
    assert max_weight_diff(m1.state_dict(), m2.state_dict()) < 1e-5
    np.testing.assert_allclose(predict(m1, task, c1), predict(m2, task, c2), atol=1e-6)
    np.testing.assert_allclose(s1.losses, s2.losses, atol=1e-6)     # step loss = full-batch mean
    m3 = build_model(bb, c1)                  # the check can fail: another loss ends elsewhere
    train(m3, task, weak, c1.replace(loss="forward_kl"), progress=False)
    assert np.abs(predict(m3, task, c1) - predict(m1, task, c1)).max() > 1e-4


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_weights(pair_task, tmp_path):
    """A run killed after step 5 resumes from Trainer's checkpoint-4 (optimizer, scheduler, RNG,
    the confidence buffer) and ends bit for bit where an uninterrupted run ends."""
    task, weak = pair_task
    bb = tiny_backbone()
    c = base_cfg(loss="reverse_kl", confidence=True, threshold_min_count=8, seed=2, checkpoint_every=2,
                 group_by_length=2, warmup_frac=0.3)
    ref = build_model(bb, c)
    s_ref = train(ref, task, weak, c, progress=False)
    ck = tmp_path / "run"

    def kill(step):
        if step == 5:
            raise Killed

    m = build_model(bb, c)
    with pytest.raises(Killed):
        train(m, task, weak, c, checkpoint=ck, on_step=kill, progress=False)
    assert (ck / "checkpoint-4" / "w2s_state.pt").exists()
    assert not any(p.name.endswith(".tmp") for p in ck.rglob("*"))
    fresh = build_model(bb, c)                       # a new process would start from scratch
    st = train(fresh, task, weak, c, checkpoint=ck, progress=False)
    assert st.resumed_from == 4 and st.steps == 6 and len(st.losses) == 2
    np.testing.assert_allclose(st.losses, s_ref.losses[4:], rtol=0, atol=0)
    for k, v in ref.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    # the check can fail: a run resumed without the checkpoint's optimizer state ends elsewhere
    assert max_weight_diff(ref.state_dict(), build_model(bb, c).state_dict()) > 1e-4
    # a checkpoint of another config is refused, not silently mixed in
    with pytest.raises(ValueError, match="different config"):
        train(build_model(bb, c), task, weak, c.replace(lr=2e-3), checkpoint=ck, progress=False)
    # an old-format checkpoint file is refused, naming the argument
    (tmp_path / "old.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="^checkpoint: .* is a file"):
        train(build_model(bb, c), task, weak, c, checkpoint=tmp_path / "old.pt", progress=False)


def test_engine_is_accelerate_state_and_gives_the_same_result(pair_task):
    task, weak = pair_task
    bb = tiny_backbone()
    c = base_cfg(loss="forward_kl", seed=1)
    eng = make_engine(c, cpu=True)
    assert type(eng).__name__ == "PartialState" and eng.num_processes == 1
    assert eng.device.type == "cpu"
    m_eng, m_none = build_model(bb, c), build_model(bb, c)
    s = train(m_eng, task, weak, c, engine=eng, progress=False)
    train(m_none, task, weak, c, progress=False)
    for k, v in m_none.state_dict().items():
        torch.testing.assert_close(m_eng.state_dict()[k], v, atol=0, rtol=0)
    assert s.real_tokens > 0 and s.padded_tokens >= s.real_tokens
    np.testing.assert_allclose(predict(m_eng, task, c, engine=eng), predict(m_none, task, c), atol=0)


def test_token_counts_and_real_fraction_match_the_order(pair_task):
    """TrainStats' real/padded tokens = the attention masks of the batches of `train_order`,
    recomputed from the text lengths; length grouping raises the real fraction."""
    task, weak = pair_task
    bb = tiny_backbone()
    for group in (0, 3):
        c = base_cfg(loss="forward_ce", group_by_length=group, grad_accum=2)
        st = train(build_model(bb, c), task, weak, c, progress=False)
        lens = np.stack([t.lengths(c.max_length) for t in task.inputs])
        rows = train_order(task, c).reshape(-1, c.micro_batch_size)
        real = int(sum(lens[:, r].sum() for r in rows))
        # brute force: every way to cut a micro-batch's 8 texts, sorted, into <= 4 padded chunks
        padded = 0
        for r in rows:
            ls = np.sort(lens[:, r].ravel())[::-1]
            padded += min(sum((j - i) * ls[i] for i, j in zip((0,) + cuts, cuts + (8,)))
                          for k in range(4) for cuts in itertools.combinations(range(1, 8), k))
        assert (st.real_tokens, st.padded_tokens) == (real, padded)
        frac = real_token_fraction(task, train_order(task, c), c.max_length, c.micro_batch_size)
        assert frac == pytest.approx(real / padded, rel=1e-12)
        one = real / sum(2 * len(r) * lens[:, r].max() for r in rows)     # one padded block
        assert frac > one + 0.05
        if group == 0:
            plain = frac
    assert frac > plain


def test_head_only_moves_only_the_head_like_a_linear_model(pair_task):
    task, weak = pair_task
    bb = tiny_backbone()
    c = base_cfg(loss="forward_ce", seed=3, head_only=True, lr=1e-2, epochs=2, warmup_frac=0.25)
    m = build_model(bb, c)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    feats = tuple(embed_texts(m, t, c) for t in task.inputs)
    train(m, task, weak, c, progress=False)
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone."))
    assert not torch.equal(before["head.weight"], after["head.weight"])
    # independent reference: Adam on the pooled-feature differences, same batches and cosine lr
    d = torch.tensor(feats[0] - feats[1], dtype=torch.float32)
    w = before["head.weight"][0].clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=c.lr)
    order = batch_order(len(task), c.batch_size, c.seed, epochs=2)     # a new order each epoch
    y = torch.tensor(weak, dtype=torch.float32)
    warm = round(0.25 * len(order))
    for t, b in enumerate(order):
        for g in opt.param_groups:
            g["lr"] = c.lr * hf_lr(t, len(order), warm)
        z = d[b] @ w
        loss = -(y[b] * torch.nn.functional.logsigmoid(z) + (1 - y[b]) * torch.nn.functional.logsigmoid(-z)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(after["head.weight"][0], w.detach(), atol=1e-6, rtol=1e-5)


def test_losses_reach_the_trainer(pair_task):
    """Forward and reverse runs from one seed end differently; the same config twice identically."""
    task, weak = pair_task
    bb = tiny_backbone()
    out = {}
    for loss in ("forward_kl", "reverse_kl", "forward_kl"):
        c = base_cfg(loss=loss, seed=0)
        m = build_model(bb, c)
        train(m, task, weak, c, progress=False)
        out.setdefault(loss, []).append(predict(m, task, c))
    assert np.array_equal(out["forward_kl"][0], out["forward_kl"][1])
    assert np.abs(out["forward_kl"][0] - out["reverse_kl"][0]).max() > 1e-4


# ----------------------------------------------------------------------------- sweep & CLI
def _tiny_model_dir(path: Path) -> Path:
    from transformers import AutoTokenizer

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    bb = tiny_backbone(vocab=len(tok))
    bb.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def test_make_row_against_independent_formulas():
    from scipy.special import expit

    from w2s_theory.pipelines.finetune import make_row

    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    z, zc = rng.normal(size=n) + (2 * y - 1), 2 * rng.normal(size=n) + 2 * (2 * y - 1)
    pw = expit(rng.normal(size=n) + 0.5 * (2 * y - 1))
    rec = {"regime": "full", "role": "student", "seed": 0, "config": FinetuneConfig().to_dict()}
    g = 1e-3
    row = make_row(rec, z, y, pw, zc, g)
    ps, pc = expit(z), expit(zc)
    assert row["student_acc"] == np.mean((ps > 0.5) == y)
    assert row["pgr"] == pytest.approx((np.mean((ps > 0.5) == y) - np.mean((pw > 0.5) == y))
                                       / (np.mean((pc > 0.5) == y) - np.mean((pw > 0.5) == y)))
    fw, fs = (1 - 2 * g) * pw + g, (1 - 2 * g) * ps + g

    def kl(p, q):
        return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))

    def risk(f):   # E KL(onehot || f) = -log f(y)
        return float(np.mean(-np.log(np.where(y == 1, f, 1 - f))))

    d_rev = float(np.mean(kl(fs, fw)))
    assert row["l1_gap"] == pytest.approx(risk(fs) - risk(fw), rel=1e-10)
    assert row["t2test_truth_slack"] == pytest.approx(risk(fw) - d_rev - risk(fs), rel=1e-9, abs=1e-12)
    r_ceil = lambda f: float(np.mean(kl(pc, f)))  # noqa: E731
    assert row["t2test_ceil_slack"] == pytest.approx(r_ceil(fw) - d_rev - r_ceil(fs), rel=1e-8, abs=1e-10)
    assert row["l1_holds"] is True or row["l1_holds"] == True  # noqa: E712


def test_cli_one_by_one_through_accelerate_resumes(tmp_path, capsys):
    """`w2s-theory finetune` on a tiny config, one-by-one runs through accelerate's Accelerator."""
    from w2s_theory.cli import main as cli_main
    from w2s_theory.sweep import ResultTable

    mdir = _tiny_model_dir(tmp_path / "tiny")
    out = tmp_path / "res.csv"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "tiny"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
[weak]
l2_grid = [0.1]
[train]
max_length = 24
precision = "fp32"
lr = 1e-4
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.5]
seeds = [0]
[run]
out = "{out}"
""")
    assert cli_main(["finetune", "--config", str(cfg), "--no-progress"]) == 0
    df = ResultTable(out).frame()
    assert len(df) == 2 * (1 + 4)                    # 2 regimes x (ceiling + 2 losses x 2 noise)
    assert set(df["regime"]) == {"full", "head_only"} and df["n_test"].eq(24).all()
    for col in ("student_acc", "student_auroc", "student_ece", "pgr", "l1_gap", "l1_tv_bound",
                "t2test_truth_slack", "t2test_ceil_slack", "train_wall_s", "device", "git_commit"):
        assert col in df.columns, col
    assert df["l1_holds"].all()
    assert (df.loc[df.regime == "full", "tokens_per_s"] > 0).all()
    # a rerun finds everything done: no training, same rows
    capsys.readouterr()
    assert cli_main(["finetune", "--config", str(cfg), "--no-progress"]) == 0
    assert "0 runs trained" in capsys.readouterr().out
    assert len(ResultTable(out).frame()) == len(df)


def test_gpu_script_cpu_path_and_ingest(tmp_path):
    """prepare (tiny model) -> run (no GPU: reduced sweep on CPU) -> ingest, through the script's main."""
    sys.path.insert(0, str(ROOT / "experiments" / "gpu"))
    try:
        import finetune_sweep as script
    finally:
        sys.path.pop(0)
    data, out, res = tmp_path / "data", tmp_path / "out", tmp_path / "res"
    cpu = tmp_path / "cpu.toml"
    cpu.write_text((ROOT / "experiments/finetune/gpu_cpu.toml").read_text()
                   .replace("l2_grid = [0.001, 0.01, 0.1, 1.0]", "l2_grid = [0.1]"))
    assert script.main(["prepare", "--out", str(data), "--tiny", "--n-train", "24", "--n-test", "20",
                        "--subsets", "harmless", "--config", str(cpu), "--cpu-config", str(cpu)]) == 0
    man = json.loads((data / "manifest.json").read_text())
    assert man["total_mib"] < 55 and "harmless.npz" in man["files"]
    assert script.main(["run", "--data", str(data), "--out", str(out), "--cpu", "--cpu-rows", "16",
                        "--time-budget", "120"]) == 0
    timings = json.loads((out / "timings.json").read_text())
    chk = timings["subsets"]["harmless"]["one_by_one"]
    assert chk["max_abs_prob_diff"] < 1e-6            # a repeated run reproduces its stored predictions (fp32 CPU)
    assert len(list(out.iterdir())) <= 8
    assert script.main(["ingest", "--from", str(out), "--data", str(data), "--to", str(res)]) == 0
    import pandas as pd

    df = pd.read_csv(res / "gpu_sweep.csv")
    assert len(df) == 2 * (1 + 4) and df["device"].str.startswith("cpu").all()
    assert (res / "gpu_timings.json").exists() and (res / "gpu_log.txt").exists()
    # a zero time budget starts nothing and still writes its files
    assert script.main(["run", "--data", str(data), "--out", str(tmp_path / "o2"), "--cpu",
                        "--time-budget", "0"]) == 0
    assert (tmp_path / "o2" / "timings.json").exists()


# ----------------------------------------------------------------------------- k classes
def three_class_task(rng, n):
    """Texts whose class is which of three token bands (3-9, 10-16, 17-23) they mostly hold."""
    y = rng.integers(0, 3, n)
    lens = rng.integers(4, 14, n)
    ids = np.concatenate([rng.integers(3 + 7 * c, 10 + 7 * c, k) for c, k in zip(y, lens)])
    t = TokenizedTexts(ids.astype(np.uint16), np.concatenate([[0], np.cumsum(lens)]), (1,), (2,), 0)
    return TextTask((t,), y.astype(np.int8)), np.eye(3)[y]


def test_three_class_head_only_equals_softmax_adam():
    """A k = 3 head (Linear(H, 3)) trained head-only under forward CE = plain Adam on the softmax
    cross-entropy -sum_j y_j log softmax(W h + b)_j of the pooled features, same batches and lr."""
    rng = np.random.default_rng(5)
    task, y = three_class_task(rng, 48)
    c = base_cfg(task="classification", loss="forward_ce", head_only=True, lr=1e-2, seed=4,
                 warmup_frac=0.2)
    m = build_model(tiny_backbone(), c, n_outputs=3)
    assert tuple(m.head.weight.shape) == (3, 32)
    feats = embed_texts(m, task.inputs[0], c)
    w0, b0 = m.head.weight.detach().clone(), m.head.bias.detach().clone()
    st = train(m, task, y, c, features=(feats,), progress=False)
    h = torch.tensor(feats)
    W, b = w0.requires_grad_(True), b0.requires_grad_(True)
    opt = torch.optim.Adam([W, b], lr=c.lr)
    order = batch_order(len(task), c.batch_size, c.seed)
    warm, yt, losses = round(0.2 * len(order)), torch.tensor(y, dtype=torch.float32), []
    for t, rows in enumerate(order):
        for g in opt.param_groups:
            g["lr"] = c.lr * hf_lr(t, len(order), warm)
        z = h[rows] @ W.T + b
        loss = -(yt[rows] * torch.log_softmax(z, dim=1)).sum(1).mean()
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(st.losses, losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.head.weight.detach(), W.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(m.head.bias.detach(), b.detach(), atol=1e-6, rtol=1e-5)
    p = predict(m, task, c)
    zr = (h @ W.detach().T + b.detach()).double().numpy()
    ref = np.exp(zr - zr.max(1, keepdims=True))
    np.testing.assert_allclose(p, ref / ref.sum(1, keepdims=True), atol=1e-6)


def test_three_class_full_finetuning_end_to_end():
    """Full fine-tuning of a tiny BERT on a 3-class toy task: (n, 3) softmax predictions, the
    training loss falls, held-out accuracy far above chance (1/3)."""
    rng = np.random.default_rng(6)
    task, y = three_class_task(rng, 192)
    test, _ = three_class_task(rng, 96)
    c = base_cfg(task="classification", loss="reverse_kl", lr=3e-3, epochs=3, seed=1, batch_size=16,
                 group_by_length=2)
    m = build_model(tiny_backbone(), c, n_outputs=3)
    p0 = predict(m, test, c)
    st = train(m, task, make_targets(0.9 * y + 0.1 / 3, c), c, progress=False)
    p = predict(m, test, c)
    assert p.shape == (96, 3) and np.allclose(p.sum(1), 1.0)
    assert np.mean(st.losses[-4:]) < 0.5 * np.mean(st.losses[:4])
    acc0, acc = (p0.argmax(1) == test.labels).mean(), (p.argmax(1) == test.labels).mean()
    assert acc > 0.8 and acc > acc0 + 0.3, (acc0, acc)
    # bad shapes are refused naming the argument
    with pytest.raises(ValueError, match="^targets: shape"):
        train(m, task, y[:, 0], c, progress=False)
    with pytest.raises(ValueError, match="^model: a head of 3"):
        train(m, task, y[:, :2], c, progress=False)
    with pytest.raises(ValueError, match="^confidence:"):
        train(m, task, y, c.replace(confidence=True), progress=False)


# ----------------------------------------------------------------------------- 4K-sweep protocol
def test_length_grouped_order_is_a_seeded_permutation_with_less_padding():
    from w2s_theory.finetune import task_lengths, train_order

    rng = np.random.default_rng(3)
    lens = rng.integers(5, 120, 800)
    plain = batch_order(800, 16, seed=7)
    o = batch_order(800, 16, seed=7, lengths=lens, group=10)
    assert o.shape == plain.shape
    assert sorted(o.ravel().tolist()) == sorted(plain.ravel().tolist())   # same examples, once each
    assert np.array_equal(o, batch_order(800, 16, seed=7, lengths=lens, group=10))   # seeded
    assert not np.array_equal(o, batch_order(800, 16, seed=8, lengths=lens, group=10))
    # transformers' grouping: each mega-batch of 10 batches sorted longest first (the longest
    # example of the epoch swapped into the first slot breaks at most two places)
    breaks = [int(np.sum(np.diff(lens[mb]) > 0)) for mb in o.reshape(-1, 160)]
    assert breaks[0] <= 2 and sum(breaks) <= 2
    assert lens[o[0, 0]] == lens.max()
    pad = lambda order: int(np.max(lens[order], axis=1).sum())   # noqa: E731
    assert pad(o) < 0.8 * pad(plain)
    # off: exactly the plain order (old run keys and numbers unchanged)
    c = base_cfg(seed=7, batch_size=16)
    task = TextTask((random_texts(rng, 800), random_texts(rng, 800)), np.zeros(800, np.int8))
    assert np.array_equal(train_order(task, c), batch_order(800, 16, seed=7))
    assert "group_by_length" not in c.to_dict()
    g = c.replace(group_by_length=10)
    assert np.array_equal(train_order(task, g),
                          batch_order(800, 16, 7, lengths=task_lengths(task, c.max_length), group=10))
    with pytest.raises(ValueError, match="group_by_length"):
        base_cfg(group_by_length=-1)
    with pytest.raises(ValueError, match="lengths"):
        batch_order(32, 8, 0, group=2)


def test_select_lr_uses_only_held_out_train_gt_and_resumes(tmp_path, capsys):
    """lr chosen on train_gt pairs only; test pairs and their labels never reach the choice."""
    from w2s_theory.cli import main as cli_main
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig, LrSelect
    from w2s_theory.sweep import ResultTable

    with pytest.raises(ValueError, match="lr_select.metric"):
        LrSelect(grid=(1e-4,), metric="test_acc")
    with pytest.raises(ValueError, match="lr_select.grid"):
        LrSelect(grid=(0.0,))
    mdir = _tiny_model_dir(tmp_path / "tiny")
    out = tmp_path / "res.csv"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "tiny"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
ceiling_split = "train_gt"
[weak]
l2_grid = [0.1]
[lr_select]
grid = [1e-5, 3e-3]
holdout = 16
[train]
max_length = 24
precision = "fp32"
batch_size = 8
group_by_length = 2
[sweep]
losses = ["forward_kl"]
noise = [0.0]
seeds = [0]
regimes = ["full"]
[run]
out = "{out}"
""")
    assert cli_main(["finetune", "--config", str(cfg), "--no-progress"]) == 0
    sel = json.loads(out.with_suffix(".lr_select.json").read_text())
    assert sorted(r["lr"] for r in sel.values()) == [1e-5, 3e-3]
    assert all(r["n_fit"] == 16 and r["n_holdout"] == 16 for r in sel.values())
    best = max(sel.values(), key=lambda r: (r["holdout_acc"], -r["lr"]))["lr"]
    df = ResultTable(out).frame()
    assert len(df) == 2 and set(df["lr"]) == {best}
    assert df["lr_rule"].str.startswith("train_gt holdout").all()
    assert dict(zip(df["role"], df["train_split"])) == {"ceiling": "train_gt", "student": "train_w2s"}
    # the selection never reads test: changing the test labels' source leaves it unchanged
    c = FinetuneSweepConfig.from_toml(cfg)
    assert c.lr_select.rule().startswith("train_gt holdout") and c.data.ceiling_split == "train_gt"
    capsys.readouterr()
    assert cli_main(["finetune", "--config", str(cfg), "--no-progress"]) == 0   # resumes: nothing new
    printed = capsys.readouterr().out
    assert "0 runs trained" in printed and "lr_select: lr" not in printed


def test_train_gt_ceiling_trains_on_train_gt_pairs(tmp_path):
    """The bundle's ceiling task is train_gt when asked, and old bundles keep train_w2s."""
    from w2s_theory.pipelines.finetune import Bundle, FinetuneSweepConfig, plan_runs

    rng = np.random.default_rng(0)
    t = lambda n: TextTask((random_texts(rng, n), random_texts(rng, n)),  # noqa: E731
                           rng.integers(0, 2, n).astype(np.int8))
    tr, te, gt = t(8), t(8), t(8)
    b = Bundle("harmless", tr, te, np.full(8, .5), np.full(8, .5), tmp_path, {}, gt=gt)
    assert b.ceiling_task() is tr
    b.meta["ceiling_split"] = "train_gt"
    assert b.ceiling_task() is gt
    with pytest.raises(ValueError, match="train_gt"):
        Bundle("harmless", tr, te, np.full(8, .5), np.full(8, .5), tmp_path,
               {"ceiling_split": "train_gt"}).ceiling_task()
    c = FinetuneSweepConfig(name="k")
    k_old = plan_runs(c, {"subset": "harmless"})[0].key
    k_gt = plan_runs(c, {"subset": "harmless", "ceiling_split": "train_gt"})[0].key
    assert k_old != k_gt


def test_plan_runs_goes_seed_by_seed_with_the_same_keys():
    """A seed's ceiling comes right before its students (a sweep stopped part-way has complete
    seeds); the runs and their keys are those of every other order (keys do not depend on it)."""

    from w2s_theory.pipelines.finetune import FinetuneSweepConfig, plan_runs

    c = FinetuneSweepConfig.from_dict({"name": "k", "strong": "all-MiniLM-L6-v2",
                                       "sweep": {"losses": ["forward_kl", "reverse_kl"],
                                                 "noise": [0.0, 0.4], "seeds": [0, 1, 2],
                                                 "regimes": ["full"], "ceiling": True}})
    runs = plan_runs(c, {"subset": "harmless"})
    seeds = [r.cfg.seed for r in runs]
    assert seeds == sorted(seeds)                      # seed-major
    per_seed = [[r.role for r in runs if r.cfg.seed == s] for s in (0, 1, 2)]
    assert all(p == ["ceiling"] + ["student"] * 4 for p in per_seed)
    # keys: an independent recomputation of one student's key from its coordinates
    from w2s_theory.pipelines.finetune import PROTOCOL_VERSION
    from w2s_theory.sweep import run_key

    st = [r for r in runs if r.role == "student"][-1]
    base = {"protocol": PROTOCOL_VERSION, "strong": "all-MiniLM-L6-v2",
            "data": {"subset": "harmless", "n_train": None, "n_test": None, "slot_seeds": None,
                     "weak_model": None, "weak_l2": None}}
    assert st.key == run_key({**base, "role": "student", "cfg": st.cfg.to_dict()})
    assert len({r.key for r in runs}) == len(runs) == 15
