"""Students: small models distilled from the teacher's weight distributions, trained, calibrated and exported.

Three kinds (`STUDENTS`): "frozen" (MiniLM-L6 embeddings + MLP head), "finetune" (the same network tuned end to
end) and "static" (distilled token vectors + head, numpy-only serving). `train_student` writes a self-describing
model folder that `vidroute.router.Router.load` serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, require
from vidroute.records import LabelRecord, utc_now

log = logging.getLogger(__name__)

STUDENTS = ("frozen", "finetune", "static")


def resolve_signals(records: Sequence[LabelRecord], signals: list[str] | None = None) -> list[str]:
    """The signal order to train with: the given one, else the spec's when the labels use its keys."""
    if signals:
        return list(signals)
    from vidroute.spec import TaskSpec

    spec_signals = TaskSpec.load().signal_names
    first = list(records[0].weights) if records else []
    return spec_signals if set(first) == set(spec_signals) else first


def train_student(
    records: list[LabelRecord],
    out_dir: Path,
    *,
    student: str = "frozen",
    seed: int = 0,
    val_fraction: float = 0.1,
    **params: Any,
) -> dict:
    """Train one student on teacher soft labels and write a loadable model folder; returns its model card.

    Identical queries (after removing @/# and case-folding) are averaged into one soft label first. The
    distinct queries are split train/val (seeded, stratified by dominant signal); the head/encoder is trained with
    KL(teacher || student) and early stopping on val KL; confidence is calibrated on val predictions; encoder
    students are exported to ONNX (int8 when it costs no quality). Extra keywords are `DistillArgs` fields, plus
    `signals` (list, default: the spec's), `data_source` (recorded in the card) and `augment` (extra LabelRecords,
    e.g. from `vidroute.students.augment.intent_prior_labels`, used for training only: never in val, and dropped
    where their query is already in `records`).

    Example:
        card = train_student(read_records("labels.jsonl", LabelRecord), Path("models/frozen"))
        card["val_metrics"]["dominant_agreement"]
    """
    if student not in STUDENTS:
        raise ConfigError(f"unknown student {student!r}; choose one of {', '.join(STUDENTS)}")
    from vidroute.students import data as D
    from vidroute.students.trainer import DistillArgs, seed_everything

    params = dict(params)
    signals = resolve_signals(records, params.pop("signals", None))
    data_source = params.pop("data_source", None)
    augment = list(params.pop("augment", None) or [])
    args = DistillArgs.from_dict(params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    torch = require("torch", "train")
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        t0 = time.perf_counter()
        seed_everything(seed)
        sl = D.soft_labels(records, signals)
        tr, va = D.split_indices(sl.targets, val_fraction, seed)
        texts = sl.texts
        y = sl.targets
        _write_val(out_dir, [texts[i] for i in va], y[va], signals)
        aug = _augment_rows(augment, texts, signals)
        if aug is not None:
            texts = texts + aug.texts
            y = np.concatenate([y, aug.targets])
            tr = np.concatenate([tr, np.arange(len(sl), len(sl) + len(aug))])
        trainer = {"frozen": _train_frozen, "finetune": _train_finetune, "static": _train_static}[student]
        sw = None
        if aug is not None and args.augment_weight != 1.0:
            sw = np.ones(len(texts))
            sw[len(sl) :] = args.augment_weight
            sw = sw[tr]
        val_pred, extra = trainer(texts, y, tr, va, args, seed, out_dir, sw)
        train_seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(prev_threads)

    from vidroute.students.calibration import Calibrator, calibration_report

    correct = (val_pred.argmax(1) == y[va].argmax(1)).astype(float)
    cal = Calibrator(l2=args.calibration_l2).fit(val_pred, correct)
    cal.save(out_dir)
    card = _card(student, signals, sl, records, tr, va, args, seed, data_source, train_seconds, val_pred, y[va], extra)
    card["calibration"] = D.round_metrics(calibration_report(cal.predict(val_pred), correct))
    card["calibration"]["fitted_on"] = "val (in-sample)"
    if aug is not None:
        card["data"]["n_augment"] = len(aug)
        card["data"]["n_train"] = len(tr)
        card["data"]["augment_sha256"] = D.data_sha256(augment)
        card["teachers"] += aug.teachers
    from vidroute.students.card import write_card

    write_card(out_dir, card)
    if student in ("frozen", "finetune") and args.onnx:
        from vidroute.students.onnx_export import export_onnx

        export_onnx(out_dir, int8=args.int8, texts=[texts[i] for i in va], targets=y[va])
    from vidroute.students.card import read_card

    return read_card(out_dir)


def _augment_rows(augment: list[LabelRecord], texts: list[str], signals: list[str]):
    """Soft labels of augmentation records whose queries are not already among the teacher-labelled ones."""
    if not augment:
        return None
    from vidroute.students.data import soft_labels
    from vidroute.students.encoder import dedup_key

    seen = {dedup_key(t) for t in texts}
    fresh = [r for r in augment if dedup_key(r.query) not in seen]
    if not fresh:
        log.warning("all %d augmentation records repeat training queries; none added", len(augment))
        return None
    return soft_labels(fresh, signals)


def _write_val(out_dir: Path, texts: list[str], targets: np.ndarray, signals: list[str]) -> None:
    """Keep the validation split with the model: re-export decisions and audits need the same rows."""
    from vidroute.records import write_jsonl

    rows = [
        {"text": t, "weights": dict(zip(signals, map(float, w), strict=True))}
        for t, w in zip(texts, targets, strict=True)
    ]
    write_jsonl(out_dir / "val.jsonl", rows)


def _card(
    student, signals, sl, records, tr, va, args, seed, data_source, train_seconds, val_pred, val_y, extra
) -> dict:
    from vidroute.students import data as D
    from vidroute.students.card import versions
    from vidroute.students.encoder import encoder_fingerprint

    enc = encoder_fingerprint(None)
    enc["layers"] = args.layers
    return {
        "format": 1,
        "student": student,
        "signals": signals,
        "seed": seed,
        "created_at": utc_now(),
        "data": {
            "source": data_source if data_source is None or isinstance(data_source, dict) else str(data_source),
            "sha256": D.data_sha256(records),
            "n_records": sl.n_records,
            "n_unique": len(sl),
            "n_conflicting": sl.n_conflicting,
            "dedup": "identical queries (after removing @/# and case-folding) averaged into one soft label",
            "n_train": len(tr),
            "n_val": len(va),
            "val_fraction": len(va) / len(sl),
        },
        "teachers": sl.teachers,
        "encoder": enc,
        "params": args.to_dict(),
        "train_seconds": round(train_seconds, 2),
        "val_metrics": D.round_metrics(D.weight_metrics(val_pred, val_y)),
        "training": extra,
        "serving": {"backend": "numpy", "file": "static.npz"} if student == "static" else {"backend": "torch"},
        "versions": versions(),
    }


def _history_summary(history: list[dict[str, float]]) -> dict[str, Any]:
    best = min(history, key=lambda h: h["val_kl"])
    return {"epochs_run": history[-1]["epoch"], "best_epoch": best["epoch"], "best_val_kl": round(best["val_kl"], 5)}


def _train_frozen(texts, y, tr, va, args, seed, out_dir, sw=None):
    import torch

    from vidroute.students.encoder import TextTokenizer, embed_texts, encoder_dir
    from vidroute.students.modeling import save_head
    from vidroute.students.trainer import fit_head

    t0 = time.perf_counter()
    x = embed_texts(texts, max_length=args.max_length, layers=args.layers)
    embed_s = time.perf_counter() - t0
    head, hist = fit_head(x[tr], y[tr], x[va], y[va], args, seed=seed, sample_weight=sw)
    with torch.no_grad():
        pred = torch.softmax(head(torch.as_tensor(x[va])), -1).numpy()
    save_head(head, out_dir)
    TextTokenizer(encoder_dir(None), max_length=args.max_length).save(out_dir)
    return pred, {"embed_seconds": round(embed_s, 2), "head": _history_summary(hist)}


def _train_finetune(texts, y, tr, va, args, seed, out_dir, sw=None):
    from vidroute.students.encoder import TextTokenizer, embed_texts, encoder_dir, load_bert, make_encoder
    from vidroute.students.modeling import ENCODER_SUBDIR, build_student_module, save_head
    from vidroute.students.trainer import finetune, fit_head, predict_module

    bert = load_bert(None, layers=args.layers)
    tokenizer = TextTokenizer(encoder_dir(None), max_length=args.max_length)
    # Stage 1 (linear probe): a trained head first, so end-to-end tuning starts from good gradients.
    x = embed_texts(
        texts, encoder=make_encoder(bert=bert), tokenizer=tokenizer, max_length=args.max_length, layers=args.layers
    )
    head, hist = fit_head(x[tr], y[tr], x[va], y[va], args, seed=seed, sample_weight=sw)
    module = build_student_module(bert, head)
    tr_texts, va_texts = [texts[i] for i in tr], [texts[i] for i in va]
    ft_hist = finetune(module, tokenizer, tr_texts, y[tr], va_texts, y[va], args, seed=seed, sample_weight=sw)
    pred = predict_module(module, tokenizer, va_texts)
    enc_dir = out_dir / ENCODER_SUBDIR
    module.bert.save_pretrained(str(enc_dir))
    tokenizer.save(enc_dir)
    save_head(module.head, out_dir)
    tokenizer.save(out_dir)
    return pred, {"head": _history_summary(hist), "finetune": [{k: round(v, 5) for k, v in h.items()} for h in ft_hist]}


def _train_static(texts, y, tr, va, args, seed, out_dir, sw=None):
    from vidroute.students.encoder import TextTokenizer, encoder_dir
    from vidroute.students.modeling import make_head
    from vidroute.students.static import StaticStudent, build_token_table, pooled_features, sif_weights, strip_special
    from vidroute.students.trainer import fit_head, seed_everything

    t0 = time.perf_counter()
    table = build_token_table(None, init=args.static_init, layers=args.layers)
    table_s = time.perf_counter() - t0
    tokenizer = TextTokenizer(encoder_dir(None), max_length=args.max_length)
    lists = [strip_special(tokenizer.ids(t)) for t in texts]
    tw = sif_weights([lists[i] for i in tr], table.shape[0], args.static_sif)
    x = pooled_features(lists, table, tw)
    seed_everything(seed)  # the head's initial weights come from the seeded generator
    head = make_head(table.shape[1], y.shape[1], hidden=args.hidden, dropout=args.dropout, gelu="tanh")
    head, hist = fit_head(x[tr], y[tr], x[va], y[va], args, seed=seed, head=head, sample_weight=sw)
    extra: dict[str, Any] = {"table_seconds": round(table_s, 2), "head": _history_summary(hist)}
    if args.static_finetune_epochs > 0:
        table, head, extra["table_tuning"] = _tune_static(table, tw, head, lists, y, tr, va, args, seed)
    model = StaticStudent.from_torch_head(table, tw, head)
    model.save(out_dir)
    tokenizer.save(out_dir)
    pred = model.proba_from_ids([lists[i] for i in va])
    return pred, extra


def _tune_static(table, tw, head, lists, y, tr, va, args, seed):
    """Tune token vectors and head end to end (rows of tokens seen in training move; the rest stay distilled)."""
    import copy

    import torch

    from vidroute.students.static import flatten, make_static_net
    from vidroute.students.trainer import kl_div, seed_everything, soft_ce

    seed_everything(seed)
    net = make_static_net(table, tw, head, train_table=True)
    opt = torch.optim.AdamW(
        [
            {"params": net.emb.parameters(), "lr": args.static_lr},
            {"params": net.head.parameters(), "lr": args.lr * 0.1},
        ],
        weight_decay=0.0,
    )
    yt = torch.as_tensor(y, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    va_ids, va_off = flatten([lists[i] for i in va])

    def val_kl() -> float:
        net.eval()
        with torch.no_grad():
            return kl_div(torch.softmax(net(va_ids, va_off), -1).numpy(), y[va])

    best, best_state, since, hist = val_kl(), copy.deepcopy(net.state_dict()), 0, []
    for epoch in range(args.static_finetune_epochs):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
        for s in range(0, len(perm), args.batch_size):
            idx = perm[s : s + args.batch_size]
            ids, off = flatten([lists[i] for i in idx])
            loss = soft_ce(net(ids, off), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = val_kl()
        hist.append({"epoch": epoch + 1, "val_kl": round(v, 5)})
        if v < best - 1e-6:
            best, best_state, since = v, copy.deepcopy(net.state_dict()), 0
        else:
            since += 1
            if since >= args.patience:
                break
    net.load_state_dict(best_state)
    return (
        net.emb.weight.detach().numpy().copy(),
        net.head.eval(),
        {"epochs_run": len(hist), "best_val_kl": round(best, 5)},
    )


__all__ = ["STUDENTS", "resolve_signals", "train_student"]
