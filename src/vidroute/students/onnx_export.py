"""Export an encoder student (MiniLM + head, one graph ending in softmax) to ONNX, optionally int8, and check it.

The exported graph takes `input_ids`, `attention_mask` (int64, dynamic batch and sequence axes) and returns
`weights` (float32, batch x k). onnxruntime's transformer optimiser fuses attention/LayerNorm/GELU; int8 dynamic
quantisation is kept only when it costs (almost) no validation quality, unless forced.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ModelError, require
from vidroute.students.card import read_card, write_card
from vidroute.students.data import weight_metrics
from vidroute.students.encoder import DEFAULT_MAX_LENGTH, TextTokenizer

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
PARITY_TOLERANCE = 1e-4
# int8 must not cost more than this on validation data to be the serving file under int8="auto".
INT8_MAX_AGREEMENT_DROP = 0.01
INT8_MAX_MAE_RISE = 0.002
INT8_MAX_KL_RISE = 0.05  # relative

_PARITY_TEXTS = [
    "a red car drifting around a corner at night",
    "dog barking",
    "the speech where she says we choose to go to the moon because it is hard",
    "2019 Champions League final highlights",
    "x",
]


def ort_session(path: str | Path, *, threads: int = 1):
    """An onnxruntime CPU session; one intra-op thread is fastest for single short queries."""
    ort = require("onnxruntime", "train")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc


def run_session(session, tokenizer: TextTokenizer, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        ids, mask = tokenizer([texts[i] for i in idx])
        p = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        if out is None:
            out = np.zeros((len(texts), p.shape[1]), dtype=np.float32)
        out[idx] = p
    assert out is not None
    return out


def _latency_ms(session, tokenizer: TextTokenizer, texts: list[str], *, reps: int = 50) -> float:
    for t in texts[:10]:
        run_session(session, tokenizer, [t])
    times = []
    for i in range(reps):
        t = texts[i % len(texts)]
        t0 = time.perf_counter()
        run_session(session, tokenizer, [t])
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def _optimise(src: Path, hidden: int, heads: int) -> bool:
    """Fuse attention/LayerNorm/GELU in place; on any optimiser failure keep the plain (correct) graph."""
    try:
        from onnxruntime.transformers import optimizer

        opt = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden)
        opt.save_model_to_file(str(src))
        fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        log.info("onnx fusion: %s", fused)
        return True
    except Exception as exc:  # optional speed-up only
        log.warning("onnxruntime transformer optimiser failed (%s); keeping the unfused graph", exc)
        return False


def export_text_graph(
    module, ids: np.ndarray, mask: np.ndarray, path: Path, *, output: str, opset: int, name: str
) -> None:
    """Trace `module(input_ids, attention_mask)` to ONNX at `path` with dynamic batch and sequence axes."""
    torch = require("torch", "train")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about Python-side shape checks in transformers; callers check parity afterwards.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (torch.from_numpy(ids), torch.from_numpy(mask)),
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=[output],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    output: {0: "batch"},
                },
                opset_version=opset,
                dynamo=False,  # the TorchScript exporter gives a graph onnxruntime's BERT fusions recognise
            )
    except Exception as exc:
        raise ModelError(f"ONNX export of {name} failed: {exc}") from exc


def export_onnx(
    model_dir: str | Path,
    *,
    int8: str = "auto",
    texts: list[str] | None = None,
    targets: np.ndarray | None = None,
    opset: int = 17,
    optimize: bool = True,
) -> dict[str, Any]:
    """Write `model.onnx` (and `model.int8.onnx`) into an encoder student's folder and record the result in its card.

    `texts`/`targets` (pre-processed validation queries and teacher weights) decide whether int8 serves; without
    them the folder's `val.jsonl` is used. Raises `ModelError` if the fp32 graph differs from torch by more
    than 1e-4 on any weight.
    """
    torch = require("torch", "train")
    require("onnx", "train")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from vidroute.students.modeling import ProbaModule, load_torch_student

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if card["student"] not in ("frozen", "finetune"):
        raise ModelError(f"{model_dir}: a {card['student']!r} student serves with numpy; only encoder students export")
    if int8 not in ("auto", "yes", "no"):
        raise ModelError(f"int8={int8!r}: use auto, yes or no")
    if texts is None:
        texts, targets = _read_val(model_dir, card["signals"])
    max_length = int(card.get("params", {}).get("max_length", DEFAULT_MAX_LENGTH))
    tokenizer = TextTokenizer(model_dir, max_length=max_length)
    student = load_torch_student(model_dir, card)
    wrapper = ProbaModule.wrap(student)
    onnx_path = model_dir / ONNX_FILE
    ids, mask = tokenizer(_PARITY_TEXTS[:2])
    t0 = time.perf_counter()
    export_text_graph(wrapper, ids, mask, onnx_path, output="weights", opset=opset, name=str(model_dir))
    cfg = student.bert.config
    fused = _optimise(onnx_path, int(cfg.hidden_size), int(cfg.num_attention_heads)) if optimize else False
    _write_metadata(onnx_path, card, max_length)

    # Parity: different lengths and a padded batch, so the dynamic axes and the mask are exercised.
    check = list(_PARITY_TEXTS) + list(texts[:59])
    with torch.no_grad():
        from vidroute.students.trainer import predict_module

        ref = predict_module(student, tokenizer, check, batch_size=16)
    fp32 = ort_session(onnx_path)
    got = run_session(fp32, tokenizer, check, batch_size=16)
    parity = float(np.abs(got - ref).max())
    if parity > PARITY_TOLERANCE:
        raise ModelError(f"ONNX output differs from torch by {parity:.2e} (> {PARITY_TOLERANCE}); not serving it")
    info: dict[str, Any] = {
        "file": ONNX_FILE,
        "opset": opset,
        "fused": fused,
        "parity_max_abs_diff": parity,
        "export_seconds": round(time.perf_counter() - t0, 2),
        "size_mb": round(onnx_path.stat().st_size / 1e6, 1),
    }
    sample = list(texts[:200]) or list(_PARITY_TEXTS)
    info["p50_ms_1thread"] = round(_latency_ms(fp32, tokenizer, sample), 3)
    serving = ONNX_FILE
    int8_path = model_dir / INT8_FILE
    if int8 == "no":
        int8_path.unlink(missing_ok=True)
    else:
        with _quiet_root_logger():
            quantize_dynamic(
                str(onnx_path),
                str(int8_path),
                weight_type=QuantType.QInt8,
                # Per-channel scales: measured on the Premier val split, per-tensor int8 raised KL by ~16%,
                # per-channel by ~0%.
                per_channel=True,
                # The fused graph has com.microsoft ops whose outputs shape inference cannot type.
                extra_options={"DefaultTensorType": 1},
            )
        q = ort_session(int8_path)
        q_info: dict[str, Any] = {
            "file": INT8_FILE,
            "size_mb": round(int8_path.stat().st_size / 1e6, 1),
            "p50_ms_1thread": round(_latency_ms(q, tokenizer, sample), 3),
            "max_abs_diff_vs_fp32": float(np.abs(run_session(q, tokenizer, check) - got).max()),
        }
        keep = int8 == "yes"
        if targets is not None and len(texts):
            m32 = weight_metrics(run_session(fp32, tokenizer, list(texts)), targets)
            m8 = weight_metrics(run_session(q, tokenizer, list(texts)), targets)
            q_info["val_fp32"] = {k: m32[k] for k in ("dominant_agreement", "mae", "kl")}
            q_info["val_int8"] = {k: m8[k] for k in ("dominant_agreement", "mae", "kl")}
            ok = (
                m32["dominant_agreement"] - m8["dominant_agreement"] <= INT8_MAX_AGREEMENT_DROP
                and m8["mae"] - m32["mae"] <= INT8_MAX_MAE_RISE
                and m8["kl"] <= m32["kl"] * (1 + INT8_MAX_KL_RISE)
            )
            keep = keep or (int8 == "auto" and ok)
        q_info["serving"] = keep
        info["int8"] = q_info
        if keep:
            serving = INT8_FILE
        elif int8 == "auto":
            log.info("int8 costs validation quality beyond the limits; serving fp32")
    card["onnx"] = info
    card["serving"] = {"backend": "onnx", "file": serving}
    write_card(model_dir, card)
    return info


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice and per-tensor notes on the root logger; keep them out of CLI output."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _write_metadata(path: Path, card: dict[str, Any], max_length: int) -> None:
    """Store signals and tokenizer settings inside the graph, so the file alone says how to feed and read it."""
    onnx = require("onnx", "train")
    model = onnx.load(str(path))
    meta = {
        "vidroute.signals": ",".join(card["signals"]),
        "vidroute.student": card["student"],
        "vidroute.max_length": str(max_length),
        "vidroute.preprocess": "remove @ and #, squeeze spaces",
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(model, str(path))


def _read_val(model_dir: Path, signals: list[str]) -> tuple[list[str], np.ndarray | None]:
    from vidroute.records import read_jsonl

    path = model_dir / "val.jsonl"
    if not path.exists():
        return [], None
    rows = list(read_jsonl(path))
    return [r["text"] for r in rows], np.array([[r["weights"][s] for s in signals] for r in rows], dtype=np.float32)
