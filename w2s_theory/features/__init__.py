r"""Language-model features of texts: batched extraction, pooling and a verified cache.

A feature of a text :math:`x` with tokens :math:`t_1..t_L` (after truncation to
``max_length`` tokens, from the left by default so the final reply survives) is a
pooled hidden state of one layer :math:`\ell` (``hidden_states[ℓ]``, 0 = embeddings):

* ``mean``: :math:`\phi(x) = \frac{1}{\sum_j m_j}\sum_j m_j h^{(\ell)}_j` with the
  attention mask :math:`m` (special tokens included, padding excluded);
* ``last``: :math:`\phi(x) = h^{(\ell)}_{j^*}`, :math:`j^* = \max\{j : m_j = 1\}` — read
  from the attention mask, never from ``input_ids != 0`` (id 0 is a real token in
  several vocabularies).

Speed: texts are tokenized once (fast tokenizer, batched; ids cached), sorted by
length and cut into buckets of at most ``max_tokens`` padded tokens, so padding
is small and batches are large. Compute runs on CUDA when available (bf16 by
default there), else CPU (fp32).

Cache: `features_for_texts` keys each result by everything that changes the
numbers (model and its weights' sha256, layer, pooling, max length, truncation
side, compute dtype, data set name, text digest), writes ``.npz`` + ``.json`` atomically
with a fingerprint (`w2s_theory.fingerprint`: the key, the content digest of every model
file -- ``config.json`` and tokenizer files included -- and the code version) and the
payload's sha256; on read an entry without a fingerprint (older format), with another
fingerprint, or a corrupt one is rebuilt, with one `w2s_theory.fingerprint.CacheWarning`.
`load_features` reads the read-only prebuilt folder (``../shared/features``,
``$W2S_FEATURES_DIR``) first, after checking its manifest against the data's digests (and
the file's sha256 when the manifest records one under ``files``).
"""


from .extraction import cache_key, extract, features_for_texts
from .prebuilt import (
    load_features,
    load_prebuilt,
    prebuilt_root,
    prebuilt_roots,
    unavailable_reason,
)
from .spec import (
    ENV_FEATURES,
    FEATURE_SETS,
    POOLINGS,
    FeatureSpec,
    feature_spec,
    resolve_spec,
)
from .spec import feature_set_name as feature_set_name
from .tokens import TokenIds, embed_token_ids, length_buckets, pool_hidden, static_embed, tokenize

__all__ = ["FeatureSpec", "FEATURE_SETS", "ENV_FEATURES", "feature_spec", "TokenIds",
           "tokenize", "length_buckets", "pool_hidden", "embed_token_ids",
           "static_embed", "extract", "features_for_texts", "prebuilt_roots", "prebuilt_root", "load_prebuilt",
           "load_features", "cache_key", "unavailable_reason", "resolve_spec", "POOLINGS"]

