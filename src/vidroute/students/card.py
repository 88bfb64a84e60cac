"""The model card saved with every student: what it is, what it was trained on, and how well it did."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from vidroute.errors import ModelError

CARD_FILE = "card.json"
README_FILE = "README.md"


def versions() -> dict[str, str]:
    """Versions of the packages that shape a trained model's numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("vidroute", "torch", "transformers", "tokenizers", "onnx", "onnxruntime", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_card(model_dir: str | Path, card: dict[str, Any]) -> Path:
    """Write `card.json` and a human-readable `README.md` next to the weights."""
    d = Path(model_dir)
    path = d / CARD_FILE
    path.write_text(json.dumps(card, indent=2, default=str) + "\n", "utf-8")
    (d / README_FILE).write_text(render_markdown(card), "utf-8")
    return path


def read_card(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / CARD_FILE
    if not Path(model_dir).is_dir():
        raise ModelError(f"model folder {model_dir} does not exist; train one with `vidroute train`")
    try:
        card = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{model_dir} has no {CARD_FILE}: not a vidroute model folder") from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from exc
    missing = [k for k in ("student", "signals") if k not in card]
    if missing:
        raise ModelError(f"{path} lacks {missing}; retrain the model with this vidroute version")
    return card


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _teacher_line(t: dict[str, Any]) -> str:
    return f"{t.get('backend')}:{t.get('model_id')} ({t.get('n_records')} records)"


def render_markdown(card: dict[str, Any]) -> str:
    val = card.get("val_metrics", {})
    data = card.get("data", {})
    lines = [
        f"# vidroute student `{card.get('student')}`",
        "",
        f"Routes a video-search query to weights over {', '.join(card.get('signals', []))} (summing to 1).",
        "",
        "## Training data",
        f"- sha256: `{data.get('sha256')}`",
        f"- records: {data.get('n_records')}, distinct queries: {data.get('n_unique')} "
        f"(identical queries averaged; {data.get('n_conflicting')} had differing labels), "
        f"train {data.get('n_train')}, val {data.get('n_val')}",
        "- teachers: " + "; ".join(_teacher_line(t) for t in card.get("teachers", [])),
        "",
        "## Validation",
        *(f"- {k}: {_fmt(v)}" for k, v in val.items()),
        "",
        f"train_seconds: {_fmt(card.get('train_seconds'))}, seed: {card.get('seed')}",
        "",
        "## Serving",
        f"- backend: {card.get('serving', {}).get('backend')}, file: {card.get('serving', {}).get('file')}",
        '- load: `Router.load(path).route(query)` or `vidroute route --model PATH "query"`',
        "",
    ]
    return "\n".join(lines)
