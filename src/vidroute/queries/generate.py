"""Synthetic video-search queries: packaged templates (plus optional LLM paraphrases), de-duplicated and split.

The pipeline, all deterministic for a seed:

1. per-intent targets from the mix (largest remainder, so counts match the mix to within one query);
2. optional LLM expansion: template queries and a teacher's paraphrases of them (cached, resumable);
3. template rounds: render candidates for the intents still short, drop exact (normalised) and loose-key
   duplicates, embed the rest with MiniLM and drop near-duplicates (cosine >= threshold, greedy keep-first),
   until every intent has its count;
4. splits by hashing normalised text per similarity group (see `splits.py`): nothing crosses train/val/test.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidroute.errors import ConfigError
from vidroute.queries.dedup import DEFAULT_THRESHOLD, Embedder, NearDupIndex, loose_key, normalize
from vidroute.queries.splits import DEFAULT_FRACTIONS, assign_splits, parse_fractions
from vidroute.queries.templates import INTENTS, Template, code_sha256, grammar_sha256, load_grammar
from vidroute.records import SPLITS, QueryRecord

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0"
# The reference system's training mix.
DEFAULT_MIX: dict[str, float] = {"visual": 0.25, "audio": 0.20, "transcription": 0.20, "metadata": 0.15, "mixed": 0.20}
# Similar-but-kept pairs at or above this cosine are kept in the same split.
DEFAULT_LINK_THRESHOLD = 0.85
_MAX_STALLED_ROUNDS = 3
_EMBED_MARGIN = 0.03
_EMBED_CHUNK = 1024

Progress = Callable[[str, int, int], None]


def parse_mix(value: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"visual=25,audio=20,..."`` (percentages or fractions) or a mapping -> fractions over all intents.

    Intents left out get 0. Errors name the bad part and the accepted intents.
    """
    if value is None:
        return dict(DEFAULT_MIX)
    raw: dict[str, float] = {}
    if isinstance(value, str):
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, sep, num = part.partition("=")
            name = name.strip()
            if not sep:
                raise ConfigError(f"mix part {part!r} is not INTENT=NUMBER (e.g. visual=25,audio=20)")
            try:
                raw[name] = float(num)
            except ValueError as exc:
                raise ConfigError(f"mix part {part!r}: {num.strip()!r} is not a number") from exc
    else:
        raw = {str(k): float(v) for k, v in value.items()}
    for name, num in raw.items():
        if name not in INTENTS:
            raise ConfigError(f"mix names unknown intent {name!r}; use some of {', '.join(INTENTS)}")
        if not math.isfinite(num) or num < 0:
            raise ConfigError(f"mix value for {name!r} must be a non-negative number, got {num}")
    total = sum(raw.values())
    if total <= 0:
        raise ConfigError(f"mix {value!r} gives every intent zero weight")
    return {i: raw.get(i, 0.0) / total for i in INTENTS}


def intent_targets(n: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Counts per intent that sum to `n` and differ from ``n * share`` by less than one (largest remainder)."""
    exact = {i: n * mix.get(i, 0.0) for i in INTENTS}
    counts = {i: math.floor(v) for i, v in exact.items()}
    short = n - sum(counts.values())
    for i in sorted(INTENTS, key=lambda i: (-(exact[i] - counts[i]), INTENTS.index(i)))[:short]:
        counts[i] += 1
    return counts


def query_id(text: str) -> str:
    """Stable id from the normalised text (identical texts can never get two ids)."""
    return "q_" + hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:16]


@dataclass
class _Cand:
    text: str
    intent: str
    source: str
    domain: str = "general"
    link_to: str | None = None  # normalised text of the query this one paraphrases


class _Pool:
    """Kept queries plus every duplicate rule; candidates go in batch by batch."""

    def __init__(
        self,
        targets: dict[str, int],
        index: NearDupIndex | None,
        embedder: Embedder | None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.need = dict(targets)
        self.on_progress = on_progress
        self.index = index
        self.embedder = embedder
        self.kept: list[_Cand] = []
        self.by_norm: dict[str, int] = {}
        self.by_loose: dict[str, int] = {}
        self.resolved: dict[str, int] = {}  # normalised candidate text -> kept query it is (or duplicates)
        self.links: list[tuple[int, int]] = []
        self.stats: Counter[str] = Counter()
        self.removed_by_template: Counter[str] = Counter()
        self.embed_s = 0.0
        self.dedup_s = 0.0

    def add(self, cands: Sequence[_Cand]) -> None:
        fresh: list[tuple[_Cand, str, str]] = []
        batch_norm: dict[str, int] = {}
        batch_loose: dict[str, int] = {}
        for c in cands:
            self.stats["candidates"] += 1
            nk, lk = normalize(c.text), loose_key(c.text)
            if not nk:
                self.stats["empty_removed"] += 1
                continue
            if nk in self.by_norm or nk in batch_norm:
                self.stats["exact_removed"] += 1
                self.removed_by_template[c.source] += 1
                if nk in self.by_norm:
                    self.resolved.setdefault(nk, self.by_norm[nk])
                continue
            if lk in self.by_loose or lk in batch_loose:
                self.stats["loose_removed"] += 1
                self.removed_by_template[c.source] += 1
                if lk in self.by_loose:
                    self.resolved.setdefault(nk, self.by_loose[lk])
                continue
            batch_norm[nk] = batch_loose[lk] = len(fresh)
            fresh.append((c, nk, lk))
        # Embedding is the expensive step: embed only what the quotas can still use, plus a small margin for
        # the near-duplicates that will be dropped (the next round tops up if the margin was too small).
        room = {i: v + math.ceil(v * _EMBED_MARGIN) + 2 for i, v in self.need.items() if v > 0}
        trimmed: list[tuple[_Cand, str, str]] = []
        for item in fresh:
            if room.get(item[0].intent, 0) > 0:
                room[item[0].intent] -= 1
                trimmed.append(item)
            else:
                self.stats["surplus"] += 1
        fresh = trimmed
        if not fresh:
            return
        if self.index is None:
            for c, nk, lk in fresh:
                self._take_if_needed(c, nk, lk)
            if self.on_progress:
                self.on_progress(len(self.kept))
            return
        # Chunks keep memory flat and let a progress bar move; the greedy order is the same as one big batch.
        for start in range(0, len(fresh), _EMBED_CHUNK):
            self._add_embedded(fresh[start : start + _EMBED_CHUNK])
            if self.on_progress:
                self.on_progress(len(self.kept))

    def _add_embedded(self, fresh: list[tuple[_Cand, str, str]]) -> None:
        assert self.index is not None and self.embedder is not None
        t = time.perf_counter()
        # Normalised text: casing and punctuation must not make two copies of a query look different.
        emb = self.embedder([nk for _, nk, _ in fresh])
        self.embed_s += time.perf_counter() - t
        t = time.perf_counter()
        res = self.index.add(emb, allow=lambda i: self._claim(fresh[i][0]))
        self.dedup_s += time.perf_counter() - t
        self.stats["near_removed"] += int(res.near.sum())
        self.links.extend(res.links)
        for row, (c, nk, lk) in enumerate(fresh):
            if res.kept[row]:
                self._keep(c, nk, lk)
            elif res.near[row]:
                self.removed_by_template[c.source] += 1
                if res.match[row] >= 0:
                    self.resolved.setdefault(nk, int(res.match[row]))

    def _claim(self, c: _Cand) -> bool:
        if self.need.get(c.intent, 0) <= 0:
            self.stats["surplus"] += 1
            return False
        self.need[c.intent] -= 1
        return True

    def _take_if_needed(self, c: _Cand, nk: str, lk: str) -> None:
        if self._claim(c):
            self._keep(c, nk, lk)

    def _keep(self, c: _Cand, nk: str, lk: str) -> None:
        idx = len(self.kept)
        self.kept.append(c)
        self.by_norm[nk] = self.by_loose[lk] = self.resolved[nk] = idx
        if c.link_to is not None and c.link_to in self.resolved:
            self.links.append((idx, self.resolved[c.link_to]))


class _TemplatePicker:
    def __init__(self, templates: list[Template]) -> None:
        self.templates = templates
        self.cum: list[float] = []
        total = 0.0
        for t in templates:
            total += max(t.weight, 0.0)
            self.cum.append(total)

    def pick(self, rng: random.Random) -> Template:
        return rng.choices(self.templates, cum_weights=self.cum, k=1)[0]


def generate_queries(
    n: int,
    *,
    mix: str | Mapping[str, float] | None = None,
    seed: int = 0,
    splits: str | Sequence[float] = DEFAULT_FRACTIONS,
    embed_dedup: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    link_threshold: float | None = DEFAULT_LINK_THRESHOLD,
    teacher: Any = None,
    expand_n: int = 0,
    expand_k: int = 2,
    expand_cache: str | Path | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> tuple[list[QueryRecord], dict[str, Any]]:
    """Generate `n` unique queries with the given intent mix; returns the records and statistics for a manifest.

    Deterministic for a given seed and arguments (LLM expansion is deterministic given its cache file).
    `embed_dedup=False` skips the MiniLM near-duplicate pass (exact and loose-key rules still apply).
    `teacher` (any `vidroute.teachers.base.Teacher`) with `expand_n > 0` paraphrases `expand_n` template
    queries, `expand_k` rewrites each; rewrites keep their source's intent and count towards the mix.
    """
    t_start = time.perf_counter()
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if expand_n < 0 or expand_k < 1:
        raise ConfigError(f"expand_n must be >= 0 and expand_k >= 1, got {expand_n} and {expand_k}")
    if expand_n and teacher is None:
        raise ConfigError("expand_n > 0 needs a teacher (--expand-with SPEC)")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--threshold must be in (0, 1], got {threshold}")
    if link_threshold is not None and not 0.0 < link_threshold <= threshold:
        raise ConfigError(f"--link-threshold must be in (0, threshold={threshold}], got {link_threshold}")
    shares = parse_mix(mix)
    fractions = parse_fractions(splits)
    targets = intent_targets(n, shares)
    grammar = load_grammar()
    pickers = {i: _TemplatePicker(grammar.templates.get(i, [])) for i in INTENTS}
    for i, count in targets.items():
        if count and not pickers[i].templates:
            raise ConfigError(f"no templates for intent {i!r}; give it 0 in --mix")

    index = NearDupIndex(threshold, link_threshold=link_threshold) if embed_dedup else None
    pool = _Pool(
        targets,
        index,
        (embedder or Embedder()) if embed_dedup else None,
        on_progress=(lambda kept: progress("generate", kept, n)) if progress else None,
    )
    rng = random.Random(seed)
    render_s = 0.0

    # --- optional LLM expansion, first, so its rewrites are not crowded out by template queries ---
    expand_stats: dict[str, Any] = {}
    t_expand = time.perf_counter()
    if teacher is not None and expand_n > 0:
        from vidroute.queries.expand import expand

        xrng = random.Random(seed * 1_000_003 + 17)
        quotas = intent_targets(expand_n, shares)
        sources: list[_Cand] = []
        seen: set[str] = set()
        for intent in INTENTS:
            tries = 0
            while quotas[intent] > 0 and tries < quotas[intent] * 20 + 20:
                tries += 1
                t = pickers[intent].pick(xrng)
                text = grammar.render(t, xrng)
                if normalize(text) in seen:
                    continue
                seen.add(normalize(text))
                sources.append(_Cand(text, intent, t.id, t.domain))
                quotas[intent] -= 1
        model_id = str(getattr(teacher, "model_id", "unknown"))
        paras, expand_stats = expand(
            teacher,
            [(s.text, s.intent) for s in sources],
            k=expand_k,
            cache_path=expand_cache,
            on_progress=(lambda d, t: progress("expand", d, t)) if progress else None,
        )
        batch: list[_Cand] = []
        for s, ps in zip(sources, paras, strict=True):
            batch.append(s)
            batch.extend(_Cand(p, s.intent, f"llm:{model_id}", s.domain, link_to=normalize(s.text)) for p in ps)
        pool.add(batch)
        expand_stats["kept"] = sum(1 for c in pool.kept if c.source.startswith("llm:"))
        expand_stats["model"] = model_id
    expand_s = time.perf_counter() - t_expand

    # --- template rounds until every intent has its count ---
    accept_rate = dict.fromkeys(INTENTS, 0.9)
    stalled = dict.fromkeys(INTENTS, 0)
    template_cands = 0
    template_kept_before = len(pool.kept)
    dup_keys = ("exact_removed", "loose_removed", "near_removed")
    dups_before = sum(pool.stats[k] for k in dup_keys)
    while any(v > 0 for v in pool.need.values()):
        order: list[str] = []
        for i in INTENTS:
            short = pool.need[i]
            if short > 0:
                order.extend([i] * min(50_000, math.ceil(short / max(accept_rate[i], 0.05) * 1.05) + 4))
        rng.shuffle(order)
        t = time.perf_counter()
        cands = []
        for i in order:
            tpl = pickers[i].pick(rng)
            cands.append(_Cand(grammar.render(tpl, rng), i, tpl.id, tpl.domain))
        render_s += time.perf_counter() - t
        template_cands += len(cands)
        before = dict(pool.need)
        pool.add(cands)
        for i in INTENTS:
            asked = order.count(i)
            if not asked:
                continue
            got = before[i] - pool.need[i]
            accept_rate[i] = max(got / asked, 0.01)
            stalled[i] = 0 if got else stalled[i] + 1
            if stalled[i] >= _MAX_STALLED_ROUNDS:
                made = targets[i] - pool.need[i]
                raise ConfigError(
                    f"the templates ran out of distinct {i!r} queries: {made} of {targets[i]} after "
                    f"{_MAX_STALLED_ROUNDS} rounds without a new one; lower --n, give {i} less of --mix, "
                    f"or raise --threshold"
                )

    # --- splits: a hash per similarity group, so near-identical texts never straddle train/val/test ---
    t = time.perf_counter()
    texts = [c.text for c in pool.kept]
    split_names, group_stats = assign_splits(texts, pool.links, fractions)
    split_s = time.perf_counter() - t
    records = [
        QueryRecord(id=query_id(c.text), query=c.text, intent=c.intent, split=s, source=c.source)
        for c, s in zip(pool.kept, split_names, strict=True)
    ]

    template_kept = len(pool.kept) - template_kept_before
    template_dups = sum(pool.stats[k] for k in dup_keys) - dups_before
    by_intent_split = {i: dict.fromkeys(SPLITS, 0) for i in INTENTS}
    for r in records:
        by_intent_split[r.intent][r.split] += 1  # type: ignore[index]
    stats: dict[str, Any] = {
        "generator": "vidroute.queries",
        "generator_version": GENERATOR_VERSION,
        "grammar_sha256": grammar_sha256(),
        "code_sha256": code_sha256(),
        "templates": grammar.n_templates,
        "vocabulary_entries": grammar.n_entries,
        "n": len(records),
        "seed": seed,
        "mix": shares,
        "splits": dict(zip(SPLITS, fractions, strict=True)),
        "counts": {
            "intent": {i: sum(by_intent_split[i].values()) for i in INTENTS},
            "split": {s: sum(by_intent_split[i][s] for i in INTENTS) for s in SPLITS},
            "intent_split": by_intent_split,
            "domain": dict(sorted(Counter(c.domain for c in pool.kept).items())),
            "templates_used": len({c.source for c in pool.kept if not c.source.startswith("llm:")}),
            "llm": sum(1 for c in pool.kept if c.source.startswith("llm:")),
        },
        "dedup": {
            "embed_dedup": embed_dedup,
            "threshold": threshold if embed_dedup else None,
            "link_threshold": link_threshold if embed_dedup else None,
            "model": ((embedder.model if embedder else None) or "all-MiniLM-L6-v2") if embed_dedup else None,
            "candidates": pool.stats["candidates"],
            "template_candidates": template_cands,
            "exact_removed": pool.stats["exact_removed"],
            "loose_removed": pool.stats["loose_removed"],
            "near_removed": pool.stats["near_removed"],
            "surplus_unused": pool.stats["surplus"],
            # Of the template candidates that were judged (not dropped for a full quota), the share kept.
            "unique_rate": round(template_kept / max(template_kept + template_dups, 1), 4),
            # Where duplicates come from: the templates that most need more vocabulary.
            "removed_by_template": dict(pool.removed_by_template.most_common(12)),
            "split_groups": group_stats,
        },
        "expand": expand_stats or None,
        "timing_s": {
            "render": round(render_s, 3),
            "expand": round(expand_s, 3),
            "embed": round(pool.embed_s, 3),
            "near_dup": round(pool.dedup_s, 3),
            "split": round(split_s, 3),
            "total": round(time.perf_counter() - t_start, 3),
        },
    }
    log.info("generated %d queries (%s)", len(records), stats["counts"]["intent"])
    return records, stats


def expand_cache_path(out: str | Path) -> Path:
    """Where LLM paraphrases for `out` are cached: `queries.jsonl` -> `queries.expand-cache.jsonl`."""
    p = Path(out)
    return p.with_name(p.name.split(".")[0] + ".expand-cache.jsonl")


def generate_to_file(
    out: str | Path,
    n: int,
    *,
    mix: str | Mapping[str, float] | None = None,
    seed: int = 0,
    splits: str | Sequence[float] = DEFAULT_FRACTIONS,
    embed_dedup: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    link_threshold: float | None = DEFAULT_LINK_THRESHOLD,
    expand_with: str | None = None,
    expand_n: int = 0,
    expand_k: int = 2,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate queries into `out` (JSONL of QueryRecord) and `out`'s manifest; return the manifest.

    Resumable: generation is deterministic for its arguments, and both files are written atomically (temp file +
    rename). If `out` and a manifest with the same arguments, templates and generator code already exist, nothing
    is redone (``status: up-to-date``). An interrupted run leaves no partial file, so rerunning it redoes the work
    and writes the same queries, never duplicates. LLM answers are cached beside `out`, so a rerun does not pay for
    them twice.
    """
    from vidroute.records import read_manifest, write_jsonl, write_manifest

    if expand_n and not expand_with:
        raise ConfigError("--expand-n needs --expand-with TEACHER_SPEC (e.g. gguf:smollm2)")
    args = {
        "n": n,
        "mix": parse_mix(mix),
        "seed": seed,
        "splits": list(parse_fractions(splits)),
        "embed_dedup": embed_dedup,
        "threshold": threshold,
        "link_threshold": link_threshold,
        "expand_with": expand_with,
        "expand_n": expand_n if expand_with else 0,
        "expand_k": expand_k,
    }
    out = Path(out)
    old = read_manifest(out) if out.exists() else None
    if (
        not force
        and old is not None
        and old.get("args") == args
        and old.get("generator_version") == GENERATOR_VERSION
        and old.get("grammar_sha256") == grammar_sha256()
        and old.get("code_sha256") == code_sha256()
        and _count_lines(out) == old.get("n")
    ):
        log.info("%s is up to date (same arguments and templates); pass force=True to regenerate", out)
        return {**old, "status": "up-to-date"}
    teacher = None
    if expand_with and expand_n:
        from vidroute.teachers import load_teacher

        teacher = load_teacher(expand_with)
    records, stats = generate_queries(
        n,
        mix=mix,
        seed=seed,
        splits=splits,
        embed_dedup=embed_dedup,
        threshold=threshold,
        link_threshold=link_threshold,
        teacher=teacher,
        expand_n=args["expand_n"],
        expand_k=expand_k,
        expand_cache=expand_cache_path(out) if teacher is not None else None,
        progress=progress,
    )
    write_jsonl(out, records)
    manifest = {"status": "written", "args": args, **stats}
    write_manifest(out, manifest)
    return manifest


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())
