"""Knowledge-distillation training loops: a head on fixed features, and an encoder fine-tuned end to end.

The loss is the KL divergence from the teacher's weight distribution to the student's softmax (soft labels, not
argmax classes). Both loops keep the weights with the lowest validation KL and stop after `patience` epochs
without improvement.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, require

log = logging.getLogger(__name__)


@dataclass
class DistillArgs:
    """Hyper-parameters of one training run (every field can be passed to `train_student` as a keyword)."""

    # Head (all students): MLP dim -> hidden -> k trained with AdamW on the soft labels.
    hidden: int = 256
    dropout: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 0.01
    batch_size: int = 64
    max_epochs: int = 400
    patience: int = 30
    # Encoder (frozen and finetune): token budget per query and how many of MiniLM's 6 blocks to keep.
    max_length: int = 64
    layers: int | None = None
    # Fine-tuning end to end (finetune): small learning rate, few epochs, best epoch kept.
    encoder_lr: float = 4e-5
    head_lr: float = 1e-3
    finetune_epochs: int = 6
    finetune_batch_size: int = 32
    finetune_patience: int = 2
    # Static student: token vectors from the encoder ("contextual": the encoder's output for each token alone;
    # "input": its input word embeddings), pooled with frequency weights, optionally tuned end to end.
    static_init: str = "contextual"
    static_sif: float = 1e-3
    static_finetune_epochs: int = 0
    static_lr: float = 1e-3
    # Runtime and export.
    threads: int = 2
    onnx: bool = True
    int8: str = "auto"  # auto: keep int8 only when it costs (almost) no validation quality; yes | no
    calibration_l2: float = 1.0
    # Loss weight of `augment` rows (synthetic queries with intent-prior labels) relative to teacher rows; head only.
    augment_weight: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "hidden": self.hidden >= 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 1,
            "patience": self.patience >= 1,
            "max_length": 4 <= self.max_length <= 512,
            "layers": self.layers is None or 1 <= self.layers <= 12,
            "encoder_lr": self.encoder_lr > 0,
            "finetune_epochs": self.finetune_epochs >= 1,
            "threads": self.threads >= 1,
            "static_init": self.static_init in ("contextual", "input"),
            "int8": self.int8 in ("auto", "yes", "no"),
            "augment_weight": self.augment_weight > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid training parameter(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, ignore_extra: bool = False) -> DistillArgs:
        names = {f.name for f in fields(cls)}
        extra = sorted(set(d) - names)
        if extra and not ignore_extra:
            raise ConfigError(f"unknown training parameter(s) {extra}; valid: {sorted(names)}")
        return cls(**{k: v for k, v in d.items() if k in names})


def _torch():
    return require("torch", "train")


def soft_ce(logits, target, weight=None):
    """Cross-entropy with soft targets; equals KL(target || softmax(logits)) plus the targets' (constant) entropy.

    `weight` (one per row) makes it a weighted mean, so down-weighted rows (synthetic augmentation) pull less.
    """
    torch = _torch()
    rows = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
    return rows.mean() if weight is None else (rows * weight).sum() / weight.sum()


def kl_div(pred: np.ndarray, target: np.ndarray) -> float:
    eps = 1e-7
    return float(np.mean(np.sum(target * (np.log(target + eps) - np.log(pred + eps)), axis=1)))


def seed_everything(seed: int) -> None:
    import random

    torch = _torch()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit_head(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_va: np.ndarray,
    y_va: np.ndarray,
    args: DistillArgs,
    *,
    seed: int = 0,
    head=None,
    sample_weight: np.ndarray | None = None,
):
    """Train an MLP head on fixed features with the KD loss; returns `(head, history)` with the best-val weights.

    `head` may be any module mapping features to logits (the static student passes one with its own pooling).
    `sample_weight` (one per training row) weights each row's loss in its batch's weighted mean.
    """
    torch = _torch()
    from vidroute.students.modeling import make_head

    # A 384x256 MLP gains nothing from a second thread, and on a busy machine OpenMP's spin-waiting makes
    # two threads several times slower than one: the head always trains single-threaded.
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_head(torch, make_head, x_tr, y_tr, x_va, y_va, args, seed, head, sample_weight)
    finally:
        torch.set_num_threads(prev_threads)


def _fit_head(torch, make_head, x_tr, y_tr, x_va, y_va, args, seed, head, sample_weight=None):
    seed_everything(seed)
    xt, yt = torch.as_tensor(x_tr), torch.as_tensor(y_tr, dtype=torch.float32)
    wt = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
    xv = torch.as_tensor(x_va)
    if head is None:
        head = make_head(x_tr.shape[1], y_tr.shape[1], hidden=args.hidden, dropout=args.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, since, history = math.inf, None, 0, []
    n = len(xt)
    for epoch in range(args.max_epochs):
        head.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, args.batch_size):
            idx = perm[s : s + args.batch_size]
            loss = soft_ce(head(xt[idx]), yt[idx], None if wt is None else wt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        head.eval()
        with torch.no_grad():
            pv = torch.softmax(head(xv), -1).numpy()
        val_kl = kl_div(pv, y_va)
        history.append({"epoch": epoch + 1, "train_ce": total / n, "val_kl": val_kl})
        if val_kl < best - 1e-6:
            best, best_state, since = val_kl, copy.deepcopy(head.state_dict()), 0
        else:
            since += 1
            if since >= args.patience:
                break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    log.info("head: %d epochs, best val KL %.4f", len(history), best)
    return head, history


def predict_module(module, tokenizer, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
    """Softmax weights of an encoder student for pre-processed texts (length-sorted batches)."""
    torch = _torch()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 0), dtype=np.float32)
    module.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            ids, mask = tokenizer([texts[i] for i in idx])
            p = torch.softmax(module(torch.from_numpy(ids), torch.from_numpy(mask)), -1).numpy()
            if out.shape[1] == 0:
                out = np.zeros((len(texts), p.shape[1]), dtype=np.float32)
            out[idx] = p
    return out


def finetune(
    module,
    tokenizer,
    texts_tr: list[str],
    y_tr: np.ndarray,
    texts_va: list[str],
    y_va: np.ndarray,
    args: DistillArgs,
    *,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
    progress=None,
) -> list[dict[str, float]]:
    """Fine-tune encoder + head end to end with the KD loss (warm-up then linear decay); keeps the best epoch.

    `sample_weight` (one per training row) weights each row's loss, as in `fit_head`.
    """
    torch = _torch()
    seed_everything(seed)
    head_params = list(module.head.parameters())
    head_ids = {id(p) for p in head_params}
    body = [p for p in module.parameters() if id(p) not in head_ids]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": args.encoder_lr}, {"params": head_params, "lr": args.head_lr}],
        weight_decay=args.weight_decay,
    )
    n = len(texts_tr)
    steps_per_epoch = math.ceil(n / args.finetune_batch_size)
    total_steps = steps_per_epoch * args.finetune_epochs
    warm = max(1, total_steps // 10)

    def lr_factor(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (total_steps - step) / max(1, total_steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    yt = torch.as_tensor(y_tr, dtype=torch.float32)
    wt = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    base = kl_div(predict_module(module, tokenizer, texts_va), y_va)
    best, best_state, since = base, copy.deepcopy(module.state_dict()), 0
    history = [{"epoch": 0, "val_kl": base}]
    for epoch in range(args.finetune_epochs):
        module.train()
        t0, total = time.perf_counter(), 0.0
        perm = torch.randperm(n, generator=gen).tolist()
        for s in range(0, n, args.finetune_batch_size):
            idx = perm[s : s + args.finetune_batch_size]
            ids, mask = tokenizer([texts_tr[i] for i in idx])
            logits = module(torch.from_numpy(ids), torch.from_numpy(mask))
            loss = soft_ce(logits, yt[idx], None if wt is None else wt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            if progress is not None:
                progress(len(idx))
        val_kl = kl_div(predict_module(module, tokenizer, texts_va), y_va)
        secs = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_ce": total / n, "val_kl": val_kl, "seconds": secs})
        log.info("finetune epoch %d: train CE %.4f, val KL %.4f", epoch + 1, total / n, val_kl)
        if val_kl < best - 1e-6:
            best, best_state, since = val_kl, copy.deepcopy(module.state_dict()), 0
        else:
            since += 1
            if since >= args.finetune_patience:
                break
    module.load_state_dict(best_state)
    module.eval()
    return history
