"""The task spec: signal names and descriptions, prompts and rubric, loaded from an editable YAML file."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from vidroute.errors import ConfigError

DEFAULT_SIGNALS = ("visual", "audio", "transcription", "metadata")


class Signal(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str


class TaskSpec(BaseModel):
    """Everything task-specific. Load the packaged default with `TaskSpec.load()`.

    Example:
        >>> spec = TaskSpec.load()
        >>> spec.signal_names
        ['visual', 'audio', 'transcription', 'metadata']
    """

    name: str = "video-search-intent"
    signals: list[Signal]
    fallback_weights: dict[str, float]
    min_weight: float = Field(default=0.05, ge=0.0, lt=1.0)
    teacher_prompt: str
    student_prompt: str
    next_token_prompt: str
    rubric: str

    @field_validator("signals")
    @classmethod
    def _unique_signals(cls, v: list[Signal]) -> list[Signal]:
        names = [s.name for s in v]
        if len(v) < 2 or len(set(names)) != len(names):
            raise ValueError(f"need at least two distinct signal names, got {names}")
        return v

    @model_validator(mode="after")
    def _fallback_matches(self) -> TaskSpec:
        if set(self.fallback_weights) != set(self.signal_names):
            raise ValueError(f"fallback_weights keys {sorted(self.fallback_weights)} != signals {self.signal_names}")
        if abs(sum(self.fallback_weights.values()) - 1.0) > 0.01:
            raise ValueError("fallback_weights must sum to 1")
        return self

    @property
    def signal_names(self) -> list[str]:
        return [s.name for s in self.signals]

    def _fill(self, template: str) -> str:
        block = "\n".join(f"- {s.name}: {s.description}" for s in self.signals)
        keys = ", ".join(f'"{n}"' for n in self.signal_names)
        words = ", ".join(self.signal_names[:-1]) + " or " + self.signal_names[-1]
        return template.format(signal_block=block, signal_keys=keys, signal_words=words)

    def render_teacher_prompt(self) -> str:
        return self._fill(self.teacher_prompt).strip()

    def render_student_prompt(self) -> str:
        return self._fill(self.student_prompt).strip()

    def render_next_token_prompt(self) -> str:
        return self._fill(self.next_token_prompt).strip()

    def render_rubric(self) -> str:
        return self._fill(self.rubric).strip()

    @staticmethod
    def sha256(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @classmethod
    def load(cls, path: str | Path | None = None) -> TaskSpec:
        """Load a spec from YAML; `None` loads the packaged default."""
        try:
            if path is None:
                return _default_spec().model_copy(deep=True)
            else:
                text = Path(path).read_text("utf-8")
            return cls.model_validate(yaml.safe_load(text))
        except FileNotFoundError as exc:
            raise ConfigError(f"spec file not found: {path}") from exc
        except (yaml.YAMLError, ValidationError, KeyError, IndexError) as exc:
            raise ConfigError(f"invalid spec {path or '(default)'}: {exc}") from exc


@functools.cache
def _default_spec() -> TaskSpec:
    # Parsed once per process: teachers ask for the task on every call.
    text = resources.files("vidroute").joinpath("default_spec.yaml").read_text("utf-8")
    return TaskSpec.model_validate(yaml.safe_load(text))
