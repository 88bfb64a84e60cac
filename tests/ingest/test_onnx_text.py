"""ONNX query path of the MiniLM text embedder: parity with sentence-transformers, cache, corruption, fallback."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from vidroute import models
from vidroute.errors import ConfigError, ModelError
from vidroute.ingest.embedders.onnx_text import HASH_SUFFIX, OnnxTextEncoder, shared_onnx_encoder
from vidroute.ingest.embedders.text import TextEmbedder, load_sentence_transformer

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = [
    "",
    "x",
    "dog barking",
    "a red car drifting around a wet corner at night",
    "Ask not what your country can do for you, ask what you can do for your country.",
    "@Messi scores a #goal in the 2019 Champions League final!!!",
    "UPPER CASE SHOUTING ABOUT THE WEATHER",
    "café crème brûlée, naïve façade, São Paulo",
    "東京の夜景と雨の交差点",
    "🔥🔥 fire emoji and 😂 laughing",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
    "price: $19.99 (was $25) -- 20% off; ends 31/12",
    "https://example.com/watch?v=abc123&t=42s",
    "   leading and trailing spaces   ",
    "line one\nline two\ttabbed",
    "the quick brown fox jumps over the lazy dog " * 40,  # > 256 tokens: truncation must match
    "a crowd cheering as the runner crosses the finish line in the rain",
    "woman explaining how to bake sourdough bread at home",
    "birds chirping; distant traffic; a door slams",
    "President Kennedy speaking about going to the moon because it is hard",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A private export cache for this module (never the user's), and a fresh per-process encoder registry."""
    root = tmp_path_factory.mktemp("vidroute-onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDROUTE_CACHE", str(root))
        shared_onnx_encoder.cache_clear()
        yield root
    shared_onnx_encoder.cache_clear()


@pytest.fixture(scope="module")
def encoder(onnx_cache):
    enc = OnnxTextEncoder(models.minilm_dir())
    assert enc.exported and enc.path.is_relative_to(onnx_cache)
    return enc


@pytest.fixture(scope="module")
def st_model():
    return load_sentence_transformer(str(models.minilm_dir()))


def _st(st_model, texts):
    return st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def test_parity_with_sentence_transformers(encoder, st_model):
    ref = _st(st_model, TEXTS)
    batch = encoder.embed(TEXTS)
    single = np.concatenate([encoder.embed([t]) for t in TEXTS])
    for got in (batch, single):
        assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = (got * ref).sum(1)
        assert cos.min() >= 0.9999, {TEXTS[i][:30]: float(cos[i]) for i in np.argsort(cos)[:3]}
    # Distinct texts stay distinct (a graph that ignored its input would pass a norm check, not this).
    assert (batch[2] @ batch[3]) < 0.9


def test_second_construction_reuses_the_export(encoder):
    before = encoder.path.stat().st_mtime_ns
    again = OnnxTextEncoder(models.minilm_dir())
    assert not again.exported
    assert again.path == encoder.path
    assert encoder.path.stat().st_mtime_ns == before
    np.testing.assert_array_equal(again.embed(TEXTS[:5]), encoder.embed(TEXTS[:5]))


def test_empty_input(encoder, onnx_cache):
    assert encoder.embed([]).shape == (0, 384)
    assert encoder.embed([]).dtype == np.float32
    emb = TextEmbedder(signal="transcription", backend="onnx")
    out = emb.embed_texts([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_text_embedder_backends_agree_and_keep_the_spec(encoder, onnx_cache, st_model):
    onnx_emb = TextEmbedder(signal="transcription", backend="onnx")
    auto_emb = TextEmbedder(signal="metadata", onnx_max_texts=2)
    torch_emb = TextEmbedder(signal="metadata", backend="torch")
    assert onnx_emb.spec == auto_emb.spec == torch_emb.spec == "minilm"  # stores record the model, not the backend
    assert onnx_emb.dim == 384
    q = ["red sports car drifting around a wet corner at night"]
    np.testing.assert_array_equal(onnx_emb.embed_texts(q), encoder.embed(q))
    np.testing.assert_array_equal(auto_emb.embed_texts(q), encoder.embed(q))  # a query takes the ONNX path
    np.testing.assert_allclose(torch_emb.embed_texts(q), _st(st_model, q), atol=1e-6)
    bulk = auto_emb.embed_texts(TEXTS[:6])  # more than onnx_max_texts: sentence-transformers
    np.testing.assert_allclose(bulk, _st(st_model, TEXTS[:6]), atol=1e-6)
    assert ((bulk * encoder.embed(TEXTS[:6])).sum(1) >= 0.9999).all()
    with pytest.raises(ConfigError, match="backend='gpu'"):
        TextEmbedder(signal="metadata", backend="gpu")


def test_corrupt_cached_file_is_rebuilt(encoder, st_model):
    data = bytearray(encoder.path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # same size, zeroed weights: it would load, and give wrong vectors
    encoder.path.write_bytes(bytes(data))
    rebuilt = OnnxTextEncoder(models.minilm_dir())
    assert rebuilt.exported
    assert encoder.path.read_bytes() != bytes(data)
    cos = (rebuilt.embed(TEXTS) * _st(st_model, TEXTS)).sum(1)
    assert cos.min() >= 0.9999
    # A killed export leaves a model without its checksum sidecar: also untrusted.
    side = encoder.path.with_name(encoder.path.name + HASH_SUFFIX)
    assert side.exists()
    side.unlink()
    assert OnnxTextEncoder(models.minilm_dir()).exported and side.exists()
    assert not list(encoder.path.parent.glob(".export-*"))  # no temp folders left behind


def test_unsupported_pooling_falls_back_to_torch(tmp_path, onnx_cache, caplog):
    """A CLS-pooled folder cannot use the mean-pooling graph: `auto` warns and uses torch, `onnx` raises."""
    src = models.minilm_dir()
    folder = tmp_path / "cls-minilm"
    folder.mkdir()
    for p in src.iterdir():
        if p.name != "1_Pooling":
            (folder / p.name).symlink_to(p)
    (folder / "1_Pooling").mkdir()
    cfg = json.loads((src / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(cfg))

    exports_before = sorted((onnx_cache / "onnx").glob("*/encoder.onnx"))
    with pytest.raises(ModelError, match="mean Pooling"):
        TextEmbedder(signal="metadata", model=str(folder), backend="onnx").embed_texts(["a dog"])
    auto = TextEmbedder(signal="metadata", model=str(folder))
    with caplog.at_level(logging.WARNING, logger="vidroute.ingest.embedders.text"):
        got = auto.embed_texts(["a dog barking"])
    assert "embedding with sentence-transformers" in caplog.text
    ref = load_sentence_transformer(str(folder)).encode(["a dog barking"], normalize_embeddings=True)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert sorted((onnx_cache / "onnx").glob("*/encoder.onnx")) == exports_before  # nothing cached for it
