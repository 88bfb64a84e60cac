"""Embedders: the offline MiniLM default, CLIP/SigLIP/CLAP loaded from tiny random models saved here, and Nova
through botocore's Stubber."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from vidroute.errors import ConfigError, EmbeddingError
from vidroute.ingest.embedders import DEFAULT_SPECS, SegmentMedia, build_embedder, build_embedders, parse_specs

# --- registry ---------------------------------------------------------------------------------------------------


def test_default_specs_are_offline_text_models():
    assert DEFAULT_SPECS == {"visual": "minilm", "audio": "minilm", "transcription": "minilm", "metadata": "minilm"}


@pytest.mark.parametrize(
    ("spec", "signal", "message"),
    [
        ("clip:/x", "audio", "embeds \\['visual'\\] media"),
        ("clap:/x", "visual", "embeds \\['audio'\\] media"),
        ("clip", "visual", "needs a model"),
        ("word2vec:/x", "metadata", "unknown embedder spec"),
        ("minilm", "smell", "unknown signal"),
    ],
)
def test_bad_specs(spec, signal, message):
    with pytest.raises(ConfigError, match=message):
        build_embedder(spec, signal)


def test_parse_specs_and_dropping_signals():
    specs = parse_specs(["visual=clip:/m/clip", "audio=none"])
    assert specs == {"visual": "clip:/m/clip", "audio": None}
    built = build_embedders({"visual": None, "audio": None})
    assert sorted(built) == ["metadata", "transcription"]
    with pytest.raises(ConfigError, match="SIGNAL=SPEC"):
        parse_specs(["clip:/x"])


def test_hub_id_without_download_permission_is_refused():
    emb = build_embedder("clip:openai/clip-vit-base-patch32", "visual", allow_download=False)
    with pytest.raises(EmbeddingError, match="downloads are off"):
        emb.embed_texts(["a dog"])


# --- MiniLM -----------------------------------------------------------------------------------------------------


def test_minilm_texts_and_segments(text_embedders):
    emb = text_embedders["transcription"]
    assert emb.dim == 384
    docs = [
        SegmentMedia(path="a", start=0, end=1, transcript="Somebody must have stolen the crown jewels."),
        SegmentMedia(path="b", start=0, end=1, transcript="The recipe needs two cups of flour and an egg."),
        SegmentMedia(path="c", start=0, end=1, transcript=""),
    ]
    vecs = emb.embed_segments(docs)
    assert vecs[2] is None  # no speech: no vector, not the vector of ""
    assert all(v.shape == (384,) and v.dtype == np.float32 for v in vecs[:2])
    q = emb.embed_texts(["who stole the crown jewels", "baking with flour"])
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    sims = q @ np.stack(vecs[:2]).T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]
    # The metadata embedder reads the metadata line of the same segment, and shares the model in memory.
    meta = text_embedders["metadata"]
    assert meta._st() is emb._st()
    assert meta.embed_segments(docs)[0] is None


# --- tiny transformers models built by the test -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    from vidroute.models import minilm_dir

    return transformers.AutoTokenizer.from_pretrained(str(minilm_dir()))


def _text_config(tok, **extra):
    return dict(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=80,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        **extra,
    )


_VISION = dict(
    image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
)


def _image_processor(name: str, **kwargs):
    import transformers

    cls = getattr(transformers, name + "Pil", None) or getattr(transformers, name)
    return cls(**kwargs)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory, tokenizer):
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.CLIPConfig(text_config=_text_config(tokenizer), vision_config=_VISION, projection_dim=16)
    model = transformers.CLIPModel(cfg)
    ip = _image_processor("CLIPImageProcessor", size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    out = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(out)
    transformers.CLIPProcessor(image_processor=ip, tokenizer=tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_siglip_dir(tmp_path_factory, tokenizer):
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.SiglipConfig(text_config=_text_config(tokenizer), vision_config=_VISION)
    model = transformers.SiglipModel(cfg)
    ip = _image_processor("SiglipImageProcessor", size={"height": 32, "width": 32})
    out = tmp_path_factory.mktemp("tiny_siglip")
    model.save_pretrained(out)
    transformers.SiglipProcessor(image_processor=ip, tokenizer=tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_clap_dir(tmp_path_factory, tokenizer):
    import torch
    import transformers

    torch.manual_seed(0)
    audio = dict(
        spec_size=64,
        patch_size=4,
        num_mel_bins=16,
        window_size=4,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        hidden_size=32,
        patch_embeds_hidden_size=16,
        enable_fusion=False,
        projection_hidden_size=32,
    )
    cfg = transformers.ClapConfig(
        text_config=_text_config(tokenizer, type_vocab_size=2), audio_config=audio, projection_dim=16
    )
    model = transformers.ClapModel(cfg)
    fe = transformers.ClapFeatureExtractor(feature_size=16, sampling_rate=48000, max_length_s=1)
    out = tmp_path_factory.mktemp("tiny_clap")
    model.save_pretrained(out)
    transformers.ClapProcessor(feature_extractor=fe, tokenizer=tokenizer).save_pretrained(out)
    return out


def _jpeg(path, colour):
    from PIL import Image

    Image.new("RGB", (64, 48), colour).save(path, "JPEG")
    return path


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_image_text_models_load_from_a_folder(family, tiny_clip_dir, tiny_siglip_dir, tmp_path):
    folder = tiny_clip_dir if family == "clip" else tiny_siglip_dir
    emb = build_embedder(f"{family}:{folder}", "visual")
    red, blue = _jpeg(tmp_path / "r.jpg", (255, 0, 0)), _jpeg(tmp_path / "b.jpg", (0, 0, 255))
    items = [
        SegmentMedia(path="v", start=0, end=5, has_video=True, keyframes=[red]),
        SegmentMedia(path="v", start=5, end=10, has_video=True, keyframes=[red, blue]),
        SegmentMedia(path="v", start=10, end=15, has_video=True, keyframes=[]),
    ]
    vecs = emb.embed_segments(items)
    assert vecs[2] is None
    q = emb.embed_texts(["a red square", "blue"])
    assert q.shape == (2, emb.dim) and vecs[0].shape == (emb.dim,)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    assert np.linalg.norm(vecs[0]) == pytest.approx(1, abs=1e-5)
    # Deterministic, and a two-frame segment is the normalised mean of its frames.
    frames = emb.embed_images([_open(red), _open(blue)])
    mean = frames.mean(axis=0)
    assert np.allclose(vecs[1], mean / np.linalg.norm(mean), atol=1e-5)
    assert np.allclose(emb.embed_segments(items[:1])[0], vecs[0], atol=1e-6)
    assert not np.allclose(vecs[0], vecs[1])


def _open(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def test_clap_loads_from_a_folder_and_embeds_audio(tiny_clap_dir, three_shot_clip):
    emb = build_embedder(f"clap:{tiny_clap_dir}", "audio")
    assert emb.sample_rate == 48000
    items = [
        SegmentMedia(path=three_shot_clip, start=0, end=3, has_audio=True),
        SegmentMedia(path=three_shot_clip, start=3, end=5.5, has_audio=True),
        SegmentMedia(path=three_shot_clip, start=0, end=3, has_audio=False),
    ]
    vecs = emb.embed_segments(items)
    assert vecs[2] is None
    assert items[0].audio(48000).size == pytest.approx(3 * 48000, rel=0.01)
    q = emb.embed_texts(["a sine tone"])
    assert q.shape == (1, emb.dim) == (1, vecs[0].shape[0])
    assert np.linalg.norm(vecs[1]) == pytest.approx(1, abs=1e-5)
    # 3 s at a 1 s model window: the vector is the normalised mean of three window vectors.
    wave = items[0].audio(48000)
    windows = emb.embed_waveforms([wave[i : i + 48000] for i in range(0, wave.size, 48000)][:3])
    mean = windows.mean(axis=0)
    assert np.allclose(vecs[0], mean / np.linalg.norm(mean), atol=1e-4)


# --- Nova through botocore Stubber ------------------------------------------------------------------------------


@pytest.fixture
def bedrock():
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    sent: list[dict] = []
    client.meta.events.register(
        "provide-client-params.bedrock-runtime.InvokeModel", lambda params, **_: sent.append(dict(params))
    )
    with Stubber(client) as stub:
        yield client, stub, sent
        stub.assert_no_pending_responses()


def _reply(stub, *vectors: tuple[str, list[float]]):
    from botocore.response import StreamingBody

    payload = json.dumps({"embeddings": [{"embeddingType": t, "embedding": v} for t, v in vectors]}).encode()
    stub.add_response(
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "application/json"},
    )


def _vec(seed: int, dim: int = 256) -> list[float]:
    return np.random.default_rng(seed).normal(size=dim).astype(float).tolist()


def test_nova_text_requests(bedrock):
    from vidroute.ingest.embedders.nova import NOVA_MODEL_ID, NovaClient

    client, stub, sent = bedrock
    nova = NovaClient(client=client)
    emb = build_embedder("nova", "transcription", nova_client=nova, nova_dimension=256)
    _reply(stub, ("TEXT", _vec(1)))
    _reply(stub, ("TEXT", _vec(2)))
    q = emb.embed_texts(["where is the crown"])
    seg = emb.embed_segments(
        [
            SegmentMedia(path="x", start=0, end=1, transcript="the crown jewels"),
            SegmentMedia(path="x", start=1, end=2, transcript=""),
        ]
    )
    assert q.shape == (1, 256) and np.linalg.norm(q[0]) == pytest.approx(1, abs=1e-5)
    assert seg[1] is None and seg[0].shape == (256,)
    assert len(sent) == 2 and all(p["modelId"] == NOVA_MODEL_ID for p in sent)
    bodies = [json.loads(p["body"]) for p in sent]
    assert bodies[0] == {
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": "TEXT_RETRIEVAL",
            "embeddingDimension": 256,
            "text": {"truncationMode": "END", "value": "where is the crown"},
        },
    }
    assert bodies[1]["singleEmbeddingParams"]["embeddingPurpose"] == "GENERIC_INDEX"
    assert bodies[1]["singleEmbeddingParams"]["text"]["value"] == "the crown jewels"


def test_nova_video_call_serves_visual_and_audio(bedrock, three_shot_clip):
    from vidroute.ingest.embedders.nova import NovaClient

    client, stub, sent = bedrock
    nova = NovaClient(client=client)
    embs = build_embedders(
        {"visual": "nova", "audio": "nova", "transcription": None, "metadata": None},
        nova_client=nova,
        nova_dimension=256,
    )
    item = SegmentMedia(path=three_shot_clip, start=0.0, end=3.0, has_video=True, has_audio=True)
    _reply(stub, ("VIDEO", _vec(3)), ("AUDIO", _vec(4)))
    visual = embs["visual"].embed_segments([item])[0]
    audio = embs["audio"].embed_segments([item])[0]  # no second call: the Stubber would fail on one
    assert nova.calls == 1
    assert np.allclose(visual, np.array(_vec(3)) / np.linalg.norm(_vec(3)), atol=1e-5)
    assert np.allclose(audio, np.array(_vec(4)) / np.linalg.norm(_vec(4)), atol=1e-5)
    body = json.loads(sent[0]["body"])["singleEmbeddingParams"]
    assert body["embeddingPurpose"] == "GENERIC_INDEX" and body["embeddingDimension"] == 256
    assert body["video"]["format"] == "mp4" and body["video"]["embeddingMode"] == "AUDIO_VIDEO_SEPARATE"
    clip = base64.b64decode(body["video"]["source"]["bytes"])
    assert clip[4:8] == b"ftyp"  # a real mp4 was cut and sent

    # An audio-only segment is sent as mp3 audio; the query uses the audio retrieval purpose.
    audio_only = SegmentMedia(path=three_shot_clip, start=3.0, end=6.0, has_video=False, has_audio=True)
    _reply(stub, ("AUDIO", _vec(5)))
    _reply(stub, ("TEXT", _vec(6)))
    assert embs["audio"].embed_segments([audio_only])[0].shape == (256,)
    embs["audio"].embed_texts(["a beep"])
    audio_body = json.loads(sent[1]["body"])["singleEmbeddingParams"]["audio"]
    assert audio_body["format"] == "mp3" and len(base64.b64decode(audio_body["source"]["bytes"])) > 1000
    assert json.loads(sent[2]["body"])["singleEmbeddingParams"]["embeddingPurpose"] == "AUDIO_RETRIEVAL"


def test_nova_errors(bedrock):
    from vidroute.ingest.embedders.nova import NovaClient

    client, stub, _ = bedrock
    emb = build_embedder("nova", "metadata", nova_client=NovaClient(client=client), nova_dimension=256)
    stub.add_client_error("invoke_model", service_error_code="ThrottlingException", http_status_code=429)
    with pytest.raises(EmbeddingError, match="ThrottlingException"):
        emb.embed_texts(["x"])
    _reply(stub, ("TEXT", _vec(1, dim=1024)))
    with pytest.raises(EmbeddingError, match="expected 256"):
        emb.embed_texts(["x"])
    with pytest.raises(ConfigError, match="embeddingDimension"):
        build_embedder("nova", "metadata", nova_dimension=500).embed_texts(["x"])
