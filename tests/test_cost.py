"""The fine-tuning cost estimate: FLOPs against torch's counter, memory constants re-measured,
the CPU rate from the committed rows, and the docs table generated from the code."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch

from w2s_theory.cost import (
    ACTIVATION_BYTES,
    PAPER_STRONG,
    cost_table,
    estimate_finetune_cost,
    measured_flops_per_s,
    non_embedding_params,
)
from w2s_theory.presets import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def _minilm_shaped_bert(dtype=torch.float32):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    p = REGISTRY["all-MiniLM-L6-v2"]
    cfg = BertConfig(vocab_size=1000, hidden_size=p.hidden, num_hidden_layers=p.n_layers,
                     num_attention_heads=12, intermediate_size=4 * p.hidden)
    return BertModel(cfg, add_pooling_layer=False).train().to(dtype)


def test_flops_equal_torch_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    m = _minilm_shaped_bert()
    ids = torch.randint(0, 1000, (4, 48))                  # 2 pairs of 48 tokens
    with FlopCounterMode(display=False) as fc:
        m(input_ids=ids).last_hidden_state.sum().backward()
    c = estimate_finetune_cost("all-MiniLM-L6-v2", 2, 48, batch_pairs=2)
    assert c.train_tokens == 4 * 48 and c.steps == 1
    assert c.train_flops == pytest.approx(fc.get_total_flops(), rel=0.01)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(input_ids=ids)
    e = estimate_finetune_cost("all-MiniLM-L6-v2", 2, 48, n_eval_pairs=2)
    assert e.eval_flops == pytest.approx(fc.get_total_flops(), rel=0.01)


def test_non_embedding_params_of_a_real_bert():
    m = _minilm_shaped_bert()
    counted = sum(p.numel() for n, p in m.named_parameters() if "embeddings" not in n)
    assert non_embedding_params(REGISTRY["all-MiniLM-L6-v2"]) == pytest.approx(counted, rel=0.01)


@pytest.mark.parametrize("dtype,key", [(torch.float32, "fp32"), (torch.bfloat16, "bf16")])
def test_activation_constant_remeasured(dtype, key):
    """Bytes autograd saves per token * width * layer, at two lengths: the intercept (without the
    s^2 attention-score term of the CPU's math kernel) is the module's constant."""
    m = _minilm_shaped_bert(dtype)
    p = REGISTRY["all-MiniLM-L6-v2"]
    params = {q.untyped_storage().data_ptr() for q in m.parameters()}
    per_unit = {}
    for s in (32, 96):
        seen = {}

        def pack(t, seen=seen):
            st = t.untyped_storage()
            if st.data_ptr() not in params:
                seen[st.data_ptr()] = st.nbytes()
            return t

        ids = torch.randint(0, 1000, (4, s))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            m(input_ids=ids)
        per_unit[s] = sum(seen.values()) / (4 * s * p.hidden * p.n_layers)
    slope = (per_unit[96] - per_unit[32]) / 64
    intercept = per_unit[32] - slope * 32
    assert intercept == pytest.approx(ACTIVATION_BYTES[key], rel=0.1)


def test_adam_state_is_eight_bytes_per_parameter():
    m = _minilm_shaped_bert()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m(input_ids=torch.randint(0, 1000, (2, 8))).last_hidden_state.sum().backward()
    opt.step()
    state = sum(v.numel() * v.element_size() for s in opt.state.values() for k, v in s.items()
                if k in ("exp_avg", "exp_avg_sq"))
    n = sum(q.numel() for q in m.parameters())
    assert state == 8 * n
    # weights + gradients + Adam = 16 bytes per parameter of the preset
    c = estimate_finetune_cost("all-MiniLM-L6-v2", 10, 16)
    assert c.weights_bytes == 16 * REGISTRY["all-MiniLM-L6-v2"].params


def test_arguments_and_scaling():
    a = estimate_finetune_cost("SmolLM2-135M", 100, 64, epochs=2, batch_pairs=16)
    b = estimate_finetune_cost("SmolLM2-135M", 200, 64, epochs=1, batch_pairs=16)
    assert a.train_flops == b.train_flops and a.steps == 14 and b.steps == 13
    assert estimate_finetune_cost("SmolLM2-135M", 100, 64, tokens_per_text=32).train_tokens == 6400
    assert a.seconds(1e12, step_s=0.5) == pytest.approx(a.flops / 1e12 + 14 * 0.5)
    with pytest.raises(ValueError, match=r"^preset: wordllama is static"):
        estimate_finetune_cost("wordllama", 10, 16)
    with pytest.raises(ValueError, match=r"^preset: unknown preset"):
        estimate_finetune_cost("nope", 10, 16)
    with pytest.raises(ValueError, match=r"^tokens_per_text: "):
        estimate_finetune_cost("SmolLM2-135M", 10, 16, tokens_per_text=17)
    # the paper's hub models: their given non-embedding count, not 12 L h^2
    q = estimate_finetune_cost("Qwen2.5-1.5B", 1, 10)
    assert q.train_flops == 3 * (2 * 1_310_000_000 + 4 * 28 * 10 * 1536) * 20
    with pytest.raises(ValueError, match=r"^activations: "):
        estimate_finetune_cost("SmolLM2-135M", 10, 16, activations="fp8")


def test_measured_rate_reads_the_rows(tmp_path):
    cols = ["machine", "regime", "strong", "n_train", "epochs", "max_length",
            "train_padded_tokens", "train_wall_s"]
    rows = [["AMD EPYC (2 cpu)", "full", "all-MiniLM-L6-v2", "100", "1", "128", "14000", "50.0"],
            ["Intel Xeon", "full", "all-MiniLM-L6-v2", "100", "1", "128", "14000", "5.0"],
            ["AMD EPYC (2 cpu)", "lastlayer", "all-MiniLM-L6-v2", "100", "1", "128", "0", "1.0"]]
    f = tmp_path / "t.csv"
    f.write_text("\n".join(",".join(r) for r in [cols] + rows) + "\n")
    # 14,000 padded tokens = 70 per text; FLOPs 3 (2 N + 4 L s h) T written out
    n, L, h = 12 * 6 * 384 ** 2, 6, 384
    want = 3 * (2 * n + 4 * L * 70 * h) * 14000 / 50.0
    assert measured_flops_per_s(f) == [pytest.approx(want, rel=1e-12)]
    assert measured_flops_per_s(f, run_keys=["absent"]) == []


def test_docs_table_is_generated_from_the_code():
    text = (ROOT / "docs" / "gpu.md").read_text()
    # the rows the page used, by run key (rows added to the table later do not move it)
    keys = text.split("<!-- cost-rows: ")[1].split(" -->")[0].split()
    rates = measured_flops_per_s(ROOT / "experiments" / "results" / "finetune" / "cpu_4k_n4000.csv",
                                 run_keys=keys)
    assert len(rates) == len(keys) >= 5
    med = statistics.median(rates)
    for tag, want in [("cost-table", cost_table(cpu_flops_per_s=med)),
                      ("cost-table-paper", cost_table(cpu_flops_per_s=med, max_length=512,
                                                      presets=list(PAPER_STRONG)))]:
        start, end = f"<!-- {tag}:start -->\n", f"<!-- {tag}:end -->"
        block = text[text.index(start) + len(start):text.index(end)].strip()
        assert block == want.strip(), tag
    assert f"{med / 1e9:.1f} GFLOP/s" in text and f"{len(rates)} full fine-tuning rows" in text
