"""Synthetic query generation: packaged templates and vocabularies, de-duplication, leak-free splits, LLM paraphrases.

`generate_queries(n, mix=..., seed=...)` returns QueryRecords and manifest statistics; `generate_to_file` adds
atomic writing, the manifest and resume; the CLI is `vidroute queries generate`.
"""

from vidroute.queries.generate import (
    DEFAULT_MIX,
    GENERATOR_VERSION,
    generate_queries,
    generate_to_file,
    intent_targets,
    parse_mix,
)
from vidroute.queries.templates import INTENTS, load_grammar

__all__ = [
    "DEFAULT_MIX",
    "GENERATOR_VERSION",
    "INTENTS",
    "generate_queries",
    "generate_to_file",
    "intent_targets",
    "load_grammar",
    "parse_mix",
]
