"""USD cost of teacher calls from an editable per-1M-token price table (packaged YAML, overridable by file)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from vidroute.errors import ConfigError

log = logging.getLogger(__name__)

ENV_VAR = "VIDROUTE_PRICES"
_lock = threading.Lock()
_cache: dict[str | None, dict[str, Price]] = {}
_unpriced: set[str] = set()


@dataclass(frozen=True)
class Price:
    """USD per 1M input and output tokens."""

    input: float
    output: float


def _parse(text: str, origin: str) -> dict[str, Price]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"price table {origin} is not valid YAML: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f"price table {origin} needs a top-level 'models:' mapping of key -> {{input, output}}")
    out: dict[str, Price] = {}
    for key, entry in models.items():
        try:
            price = Price(input=float(entry["input"]), output=float(entry["output"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"price table {origin}: entry {key!r} must be {{input: <usd per 1M>, output: <usd per 1M>}}"
            ) from exc
        if price.input < 0 or price.output < 0:
            raise ConfigError(f"price table {origin}: entry {key!r} has a negative price")
        out[str(key).lower()] = price
    return out


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """The packaged table, with entries from `path` (or $VIDROUTE_PRICES) layered over it."""
    path = path if path is not None else os.environ.get(ENV_VAR) or None
    key = str(path) if path is not None else None
    with _lock:
        if key in _cache:
            return _cache[key]
    table = _parse(resources.files("vidroute.teachers").joinpath("prices.yaml").read_text("utf-8"), "(packaged)")
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"price table {p} not found (set by {ENV_VAR} or passed in); fix the path or unset it")
        table = {**table, **_parse(p.read_text("utf-8"), str(p))}
    with _lock:
        _cache[key] = table
    return table


def price_for(model_id: str, table: dict[str, Price] | None = None) -> Price | None:
    """The entry whose key is the longest case-insensitive substring of `model_id`, or None."""
    table = table if table is not None else load_prices()
    mid = model_id.lower()
    hits = [k for k in table if k in mid]
    return table[max(hits, key=len)] if hits else None


def cost_usd(model_id: str, input_tokens: int, output_tokens: int) -> float:
    """USD for one call; an unknown model costs 0 and is logged once and listed by `unpriced_models()`."""
    price = price_for(model_id)
    if price is None:
        if model_id not in _unpriced:
            _unpriced.add(model_id)
            log.warning(
                "no price for model %r: counting its cost as 0 (add it to prices.yaml or %s)", model_id, ENV_VAR
            )
        return 0.0
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def is_priced(model_id: str) -> bool:
    return price_for(model_id) is not None


def unpriced_models() -> list[str]:
    """Model ids that were costed at 0 because the table had no entry for them."""
    return sorted(_unpriced)
