"""Optional LLM expansion: a teacher paraphrases template queries into the ways real people type them.

Only `Teacher.chat(system, user)` is used, so any backend works. Answers are cached in a JSONL file (one line per
source query and model) so an interrupted run resumes without paying for the same calls twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidroute.errors import TeacherError
from vidroute.queries.dedup import normalize
from vidroute.records import JsonlAppender, read_jsonl

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You rewrite search queries for a video archive into other ways a real person might type them. "
    "Keep the meaning and keep the kind of query (a description of what is seen stays a visual description, "
    "a sound stays a sound, words someone says stay spoken words, a title or name stays a title or name). "
    "Vary wording, length, word order and casing; you may drop articles or add a detail, but invent no new topic. "
    "Answer with one rewrite per line and nothing else: no numbering, no quotes, no explanations."
)

INTENT_HINTS = {
    "visual": "It describes what can be seen in the video.",
    "audio": "It describes a sound (not speech) in the video.",
    "transcription": "It is words somebody says in the video, or what they talk about.",
    "metadata": "It is a title, a name, a channel, a genre or a date that identifies the video.",
    "mixed": "It combines what is seen, heard, said and/or the video's title or names.",
}

_BULLET = re.compile(r"^\s*(?:[-*•]+|\(?\d{1,2}[.):]|\(?[a-zA-Z][.)])\s+")
# "Here are 3 rewrites" / "Sure! Some paraphrases" - but not a spoken line that happens to start with "sure".
_PREAMBLE = re.compile(r"^(here (are|is)|sure|certainly|of course)\b", re.IGNORECASE)
_PREAMBLE_TOPIC = re.compile(r"rewrite|paraphrase|version|alternative|quer(y|ies)", re.IGNORECASE)
# A small model sometimes answers in a dialogue ("Question: ...", "A: ...") instead of rewriting.
_ROLE = re.compile(r"^(q|a|question|answer|user|assistant|explanation|note|original(\s+\w+)?)\s*:", re.IGNORECASE)
MAX_CHARS = 200
_TOKENS_PER_REWRITE = 40


def build_user_prompt(query: str, intent: str | None, k: int) -> str:
    hint = INTENT_HINTS.get(intent or "", "")
    return f"Query: {query}\n{hint}\nWrite {k} different rewrites, one per line.".replace("\n\n", "\n")


def parse_paraphrases(text: str, source: str, k: int, *, truncated: bool = False) -> list[str]:
    """Clean a model's answer into at most `k` paraphrases.

    Drops bullets and numbering, surrounding quotes, preambles ("Here are 3 rewrites:"), role-labelled lines
    ("Answer: ..."), lines that only repeat the source (after normalisation), empty or overlong lines, duplicates
    among the rewrites, and - when the answer was `truncated` at the token limit - its unfinished last line.
    """
    out: list[str] = []
    seen = {normalize(source)}
    lines = text.replace("\r", "\n").rstrip().split("\n")
    if truncated:
        lines = lines[:-1]
    for raw in lines:
        line = _BULLET.sub("", raw.strip()).strip()
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'`“”":
            line = line[1:-1].strip()
        line = line.strip('"“”`').strip()
        if line.lower().startswith(("rewrite:", "query:", "paraphrase:", "revised:", "rewritten:")):
            line = line.split(":", 1)[1].strip()
        preamble = _PREAMBLE.match(line) and _PREAMBLE_TOPIC.search(line)
        if not line or len(line) > MAX_CHARS or preamble or line.endswith(":") or _ROLE.match(line):
            continue
        key = normalize(line)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(line)
        if len(out) >= k:
            break
    return out


def _read_cache(path: Path | None, model_id: str) -> dict[str, list[str]]:
    if path is None or not path.exists():
        return {}
    cache: dict[str, list[str]] = {}
    for row in read_jsonl(path):
        if row.get("model") == model_id and isinstance(row.get("paraphrases"), list):
            cache[row["source"]] = [str(p) for p in row["paraphrases"]]
    return cache


def expand(
    teacher: Any,
    sources: Sequence[tuple[str, str | None]],
    *,
    k: int = 2,
    cache_path: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[list[str]], dict[str, int]]:
    """Paraphrases for each (query, intent) source, in order, and call statistics.

    A failed call (after the backend's own retries) yields no paraphrases for that source; it is counted, logged
    and not cached, so a rerun tries it again.
    """
    model_id = str(getattr(teacher, "model_id", "unknown"))
    path = Path(cache_path) if cache_path else None
    cache = _read_cache(path, model_id)
    stats = {"calls": 0, "cached": 0, "failed": 0, "paraphrases": 0}
    max_tokens = _TOKENS_PER_REWRITE * k + 16  # short rewrites; bounds a rambling model's cost
    results: list[list[str]] = []
    appender = JsonlAppender(path) if path else None
    try:
        for i, (query, intent) in enumerate(sources):
            if query in cache:
                paras = cache[query][:k]
                stats["cached"] += 1
            else:
                stats["calls"] += 1
                try:
                    res = teacher.chat(
                        SYSTEM_PROMPT,
                        build_user_prompt(query, intent, k),
                        temperature=0.8,
                        max_tokens=max_tokens,
                    )
                except TeacherError as exc:
                    stats["failed"] += 1
                    log.warning("expansion call failed for %r: %s", query, exc)
                    results.append([])
                    continue
                paras = parse_paraphrases(res.text, query, k, truncated=res.output_tokens >= max_tokens)
                if appender is not None:
                    appender.write({"model": model_id, "source": query, "paraphrases": paras, "raw": res.text})
            stats["paraphrases"] += len(paras)
            results.append(paras)
            if on_progress is not None:
                on_progress(i + 1, len(sources))
    finally:
        if appender is not None:
            appender.close()
    return results, stats
