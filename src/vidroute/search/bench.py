"""Search benchmarks: retrieval quality with uniform/routed/oracle weights (VAST) and store latency/recall at scale.

Retrieval (`run_retrieval`) — `../shared/data/retrieval/` VAST annotations (vision captions, audio captions,
subtitle per clip; no videos). Clips are merged by id; a clip with 5 vision and 5 audio captions is a full clip,
the others (subtitle only) are distractors for transcription queries. Per full clip, signal vectors are MiniLM
embeddings of text, a *proxy* for real visual/audio embeddings:
  - visual = mean MiniLM of vision captions 1–4, audio = mean of audio captions 1–4 (renormalised);
  - transcription = MiniLM of the whole subtitle;
  - metadata: VAST has no titles, so the store holds no metadata signal (router metadata weight renormalised away).
Queries: the held-out 5th vision caption (true signal visual), the held-out 5th audio caption (audio), and a
contiguous 8-word fragment from the middle of the subtitle (transcription; quoting what is said). Ground truth = the
clip. Weightings: uniform, routed (`Router.route(query).weights`, needs `--model`), oracle (one-hot on the
query's signal). Exact raw fusion on a flat LanceDB store; metrics Recall@1/5/10, MRR, nDCG@10.

Scale (`run_scale`) — synthetic segments × 4 signals × 384-d with realistic structure: a Gaussian mixture around
2,000 topic centres (Zipf-like popularity), one topic per video of 50 segments, a per-video offset, per-segment noise;
each signal its own centres (signals correlate through the topic); transcription missing for 30 % of videos and
audio for 10 %. Queries are noisy copies of a topic's centres with Dirichlet(0.5) weights, or the router's weights
for a real query (its latency then counts). Measured: insert rate, index build time, p50/p95 latency of raw fusion
(+ routing), recall@10 of the store's top 10 against exact numpy fusion with the same weights.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError
from vidroute.search.fusion import Layout

SIGNALS = ["visual", "audio", "transcription", "metadata"]
LANCE_DEFAULT_NPROBES = 16
RETRIEVAL_FILES = ("vast120_vast_test120.json", "mix120_mix120.json")
Log = Callable[[str], None] | None


def default_data_dir() -> Path:
    env = os.environ.get("VIDROUTE_SHARED")
    if env:
        return Path(env) / "data"
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


# ---- metrics ----------------------------------------------------------------------------------------------------
def rank_metrics(ranks: list[int | None]) -> dict[str, float]:
    """Recall@1/5/10, MRR and nDCG@10 for one relevant item per query (rank 1-based; None = not retrieved)."""
    n = len(ranks) or 1
    r = [x for x in ranks if x is not None]
    return {
        "recall1": sum(x <= 1 for x in r) / n,
        "recall5": sum(x <= 5 for x in r) / n,
        "recall10": sum(x <= 10 for x in r) / n,
        "mrr": sum(1.0 / x for x in r) / n,
        "ndcg10": sum(1.0 / math.log2(x + 1) for x in r if x <= 10) / n,
        "queries": len(ranks),
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ---- text embedding ---------------------------------------------------------------------------------------------
class _MiniLM:
    """MiniLM through sentence-transformers (the packaged offline copy), L2-normalised."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from vidroute.models import minilm_dir

        self.model = SentenceTransformer(str(minilm_dir()), device="cpu")

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False),
            dtype=np.float32,
        )


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


# ---- retrieval benchmark ----------------------------------------------------------------------------------------
def load_vast(data_dir: Path) -> list[dict[str, Any]]:
    """VAST clips from both files, merged by id (fields filled from whichever record has them)."""
    merged: dict[str, dict[str, Any]] = {}
    for name in RETRIEVAL_FILES:
        path = data_dir / "retrieval" / name
        if not path.exists():
            raise ConfigError(
                f"retrieval data not found: {path}; pass --data pointing at the folder holding retrieval/"
            )
        for rec in json.loads(path.read_text(encoding="utf-8")):
            cid = rec.get("clip_id") or rec.get("video_id")
            if not cid:
                continue
            row = merged.setdefault(cid, {"id": cid})
            for key, value in rec.items():
                if value and not row.get(key):
                    row[key] = value
    return list(merged.values())


def _fragment(text: str, words: int = 8) -> str | None:
    toks = text.split()
    if len(toks) < words:
        return None
    start = (len(toks) - words) // 2
    return " ".join(toks[start : start + words])


def run_retrieval(
    *,
    data_dir: Path | None = None,
    router: Any = None,
    embedder: Any = None,
    fusion: str = "raw",
    also_fusions: tuple[str, ...] = ("minmax", "rrf"),
    bm25: bool = False,
    log: Log = None,
) -> dict[str, Any]:
    """The VAST retrieval benchmark (module doc); returns metrics per weighting and per query signal for `fusion`,
    and Recall@10/MRR per weighting for each of `also_fusions` under `by_fusion`."""
    from vidroute.search.base import StoreConfig
    from vidroute.search.lance_store import LanceStore
    from vidroute.search.types import Segment

    t0 = time.perf_counter()
    clips = load_vast(data_dir or default_data_dir())
    emb = embedder or _MiniLM()
    signals = ["visual", "audio", "transcription"]
    full = [c for c in clips if len(c.get("vision_cap") or []) >= 5 and len(c.get("audio_cap") or []) >= 5]
    texts: list[str] = []
    for c in clips:
        if c in full:
            texts += c["vision_cap"][:4] + c["audio_cap"][:4]
        texts.append(c.get("subtitle") or "")
    vecs = emb.embed_texts(texts)
    pos = 0
    segments: list[Segment] = []
    for c in clips:
        v: dict[str, Any] = {}
        if c in full:
            v["visual"] = _unit(vecs[pos : pos + 4].mean(axis=0))
            v["audio"] = _unit(vecs[pos + 4 : pos + 8].mean(axis=0))
            pos += 8
        sub = c.get("subtitle") or ""
        v["transcription"] = vecs[pos] if sub.strip() else None
        pos += 1
        segments.append(
            Segment(
                segment_id=f"{c['id']}:00000",
                video_id=c["id"],
                path=c.get("url", ""),
                start=0.0,
                end=10.0,
                transcript=sub,
                vectors={s: (None if x is None else x.tolist()) for s, x in v.items()},
            )
        )
    queries: list[tuple[str, str, str]] = []  # (text, signal, clip id)
    for c in full:
        queries.append((c["vision_cap"][4], "visual", c["id"]))
        queries.append((c["audio_cap"][4], "audio", c["id"]))
        frag = _fragment(c.get("subtitle") or "")
        if frag:
            queries.append((frag, "transcription", c["id"]))
    qvecs = emb.embed_texts([q for q, _, _ in queries])
    if log:
        took = time.perf_counter() - t0
        log(f"retrieval: {len(clips)} clips ({len(full)} full), {len(queries)} queries, embedded in {took:.1f}s")

    tmp = Path(tempfile.mkdtemp(prefix="vidroute-bench-retrieval-"))
    try:
        store = LanceStore(tmp / "store")
        store.configure(StoreConfig(layout=Layout(signals=signals, dims=dict.fromkeys(signals, qvecs.shape[1]))))
        for seg in segments:
            store.upsert_video(seg.video_id, [seg])
        store.optimize()
        weightings: dict[str, list[int | None]] = {"uniform": [], "oracle": []}
        if router is not None:
            weightings["routed"] = []
        per_signal: dict[str, dict[str, list[int | None]]] = {w: {} for w in weightings}
        fusions = [fusion, *(f for f in also_fusions if f != fusion)]
        other: dict[str, dict[str, list[int | None]]] = {f: {} for f in fusions[1:]}
        route_ms: list[float] = []
        routed_weights: dict[str, list[float]] = {s: [] for s in SIGNALS}
        for (text, sig, cid), qv in zip(queries, qvecs, strict=True):
            qd = dict.fromkeys(signals, qv)
            ws: dict[str, dict[str, float] | None] = {"uniform": None, "oracle": {sig: 1.0}}
            if router is not None:
                r = router.route(text)
                route_ms.append(float(getattr(r, "latency_ms", 0.0)))
                ws["routed"] = dict(r.weights)
                for s in SIGNALS:
                    routed_weights[s].append(float(r.weights.get(s, 0.0)))
            for name, w in ws.items():
                for f in fusions:
                    hits = store.search(qd, w, k=10, fusion=f, text=text if bm25 else None)
                    ids = [h.video_id for h in hits]
                    rank = ids.index(cid) + 1 if cid in ids else None
                    if f == fusion:
                        weightings[name].append(rank)
                        per_signal[name].setdefault(sig, []).append(rank)
                    else:
                        other[f].setdefault(name, []).append(rank)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out: dict[str, Any] = {
        "clips": len(clips),
        "full_clips": len(full),
        "queries": len(queries),
        "queries_per_signal": {s: sum(1 for _, q, _ in queries if q == s) for s in signals},
        "signals": signals,
        "embedder": "all-MiniLM-L6-v2 text embeddings of captions (proxy for visual/audio embeddings)",
        "fusion": fusion,
        "weightings": {},
        "by_fusion": {
            f: {name: {k: v for k, v in rank_metrics(r).items() if k in ("recall10", "mrr")} for name, r in d.items()}
            for f, d in other.items()
        },
    }
    for name, ranks in weightings.items():
        m = rank_metrics(ranks)
        m["per_signal"] = {s: rank_metrics(r) for s, r in per_signal[name].items()}
        out["weightings"][name] = m
    if router is not None:
        out["router"] = str(getattr(router, "model", type(router).__name__))
        out["route_ms_p50"] = percentile(route_ms, 50)
        out["routed_weights_mean"] = {s: float(np.mean(v)) if v else 0.0 for s, v in routed_weights.items()}
    out["seconds"] = time.perf_counter() - t0
    return out


# ---- synthetic data for the scale benchmark ---------------------------------------------------------------------
class SyntheticCorpus:
    """Structured synthetic segments: topics → videos → segments, per-signal centres (see module doc).

    Variation inside a topic lives mostly in a low-dimensional subspace of that topic (`intrinsic_dim` of a
    per-signal pool of directions), as in real embeddings, plus a little isotropic noise (`iso_noise`).
    `intrinsic_dim=0` gives a plain isotropic Gaussian mixture: inside a topic, segments are then uniformly spread
    in all 384 dimensions, the regime where no partition-based index can find exact neighbours cheaply.
    """

    def __init__(
        self,
        *,
        dim: int = 384,
        signals: list[str] | None = None,
        topics: int = 2000,
        segments_per_video: int = 50,
        video_spread: float = 0.6,
        segment_noise: float = 0.9,
        intrinsic_dim: int = 16,
        iso_noise: float = 0.25,
        missing: dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.dim = dim
        self.signals = signals or list(SIGNALS)
        self.topics = topics
        self.segments_per_video = segments_per_video
        self.video_spread = video_spread
        self.segment_noise = segment_noise
        self.intrinsic_dim = intrinsic_dim
        self.iso_noise = iso_noise
        self.missing = {"audio": 0.1, "transcription": 0.3} if missing is None else missing
        self.seed = seed
        rng = np.random.default_rng(seed)
        shared = rng.standard_normal((topics, dim)).astype(np.float32)
        self.centres = {}
        self.bases = {}
        pool = 8 * max(intrinsic_dim, 1)
        for s in self.signals:  # each signal its own space; the topic ties them together
            c = 0.6 * shared @ _rotation(rng, dim) + 0.8 * rng.standard_normal((topics, dim)).astype(np.float32)
            self.centres[s] = c / np.linalg.norm(c, axis=1, keepdims=True)
            self.bases[s] = _rotation(rng, dim)[:pool]  # orthonormal directions topics draw their subspace from
        self.topic_dirs = np.stack([rng.choice(pool, size=max(intrinsic_dim, 1), replace=False) for _ in range(topics)])
        p = 1.0 / (np.arange(topics) + 10.0) ** 0.8
        self.popularity = p / p.sum()
        self.layout = Layout(signals=self.signals, dims=dict.fromkeys(self.signals, dim))

    def _noise(self, rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * (scale / math.sqrt(self.dim))).astype(np.float32)

    def _variation(self, rng: np.random.Generator, topic: int, signal: str, n: int, scale: float) -> np.ndarray:
        """n offsets of norm ≈ scale: in the topic's subspace, plus isotropic noise (or all isotropic)."""
        if self.intrinsic_dim <= 0:
            return self._noise(rng, (n, self.dim), scale)
        r = self.intrinsic_dim
        basis = self.bases[signal][self.topic_dirs[topic]]  # (r, dim)
        low = (rng.standard_normal((n, r), dtype=np.float32) * (scale / math.sqrt(r))) @ basis
        return (low + self._noise(rng, (n, self.dim), scale * self.iso_noise)).astype(np.float32)

    def video(self, v: int) -> tuple[int, dict[str, np.ndarray | None]]:
        """Video v's topic and its per-signal centre (None where the video lacks the signal); reproducible."""
        rng = np.random.default_rng([self.seed, 7, v])
        topic = int(rng.choice(self.topics, p=self.popularity))
        centres: dict[str, np.ndarray | None] = {}
        for s in self.signals:
            c = self.centres[s][topic] + self._variation(rng, topic, s, 1, self.video_spread)[0]
            centres[s] = None if rng.random() < self.missing.get(s, 0.0) else c
        return topic, centres

    def chunks(self, n: int, chunk: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (packed float32 (m, Σdims), masks (m,), video index (m,)) for n segments, video-aligned chunks."""
        spv = self.segments_per_video
        chunk = max(spv, chunk // spv * spv)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            rng = np.random.default_rng([self.seed, 11, start])
            first = start // spv
            n_vid = math.ceil(m / spv)
            vids = [self.video(first + i) for i in range(n_vid)]
            seg_vid = np.repeat(np.arange(n_vid), spv)[:m]
            packed = np.zeros((m, self.layout.total_dim), dtype=np.float32)
            masks = np.zeros(m, dtype=np.int64)
            for i, s in enumerate(self.signals):
                has = np.array([c[s] is not None for _t, c in vids])
                x = np.zeros((m, self.dim), dtype=np.float32)
                for j, (topic, cen) in enumerate(vids):
                    rows = np.flatnonzero(seg_vid == j)
                    if cen[s] is None or rows.size == 0:
                        continue
                    x[rows] = cen[s] + self._variation(rng, topic, s, rows.size, self.segment_noise)
                norms = np.linalg.norm(x, axis=1, keepdims=True)
                x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
                packed[:, self.layout.slot(s)] = x
                masks |= np.where(has[seg_vid], 1 << i, 0)
            yield packed, masks, first + seg_vid

    def queries(
        self, n: int, *, corpus_size: int, seed: int = 1, moment_share: float = 0.5
    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray, list[str]]:
        """n query vector sets drawn like held-out segments, Dirichlet(0.5) weights (n, signals), and each kind.

        "moment" queries are a new segment of an indexed video (someone describing what they saw in it);
        "topic" queries are a segment of an unseen video on a (popular) topic, the harder, tie-heavy case.
        """
        rng = np.random.default_rng([self.seed, 10_000 + seed])
        n_videos = max(1, corpus_size // self.segments_per_video)
        out, kinds = [], []
        for _ in range(n):
            if rng.random() < moment_share:
                _t, cen = self.video(int(rng.integers(n_videos)))
                kinds.append("moment")
            else:
                _t, cen = self.video(10_000_000 + int(rng.integers(1 << 30)))  # an unseen video
                kinds.append("topic")
            qv = {}
            for s in self.signals:
                c = cen[s] if cen[s] is not None else self.centres[s][_t]
                x = c + self._variation(rng, _t, s, 1, self.segment_noise)[0]
                qv[s] = x / np.linalg.norm(x)
            out.append(qv)
        return out, rng.dirichlet([0.5] * len(self.signals), size=n), kinds


def _rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q.astype(np.float32)


# ---- scale benchmark --------------------------------------------------------------------------------------------
def _topk_merge(best: np.ndarray, best_idx: np.ndarray, scores: np.ndarray, offset: int, k: int) -> None:
    """Merge a chunk's (q, m) scores into the running per-query top k (in place)."""
    kk = min(k, scores.shape[1])
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    cand = np.concatenate([best, np.take_along_axis(scores, part, axis=1)], axis=1)
    cand_idx = np.concatenate([best_idx, part + offset], axis=1)
    order = np.argsort(-cand, axis=1)[:, :k]
    best[:] = np.take_along_axis(cand, order, axis=1)
    best_idx[:] = np.take_along_axis(cand_idx, order, axis=1)


def run_scale(
    n: int,
    *,
    workdir: Path,
    n_queries: int = 200,
    router: Any = None,
    route_texts: list[str] | None = None,
    index_type: str = "IVF_SQ",
    num_partitions: int | None = None,
    nprobes: list[int] | None = None,
    candidates: int = 100,
    keep: bool = False,
    log: Log = None,
) -> dict[str, Any]:
    """Build an n-segment LanceDB store of synthetic data and time fused queries against exact numpy.

    Up to the store's `exact_limit` the default (exact, in-memory) path is measured first; then the per-signal
    indexes are built and each `nprobes` setting measured. `p50_ms`/`recall10_vs_exact` are the store's default
    configuration at this size: exact where it applies, else the indexed path at the default nprobes.
    """
    from vidroute.search.base import StoreConfig
    from vidroute.search.fusion import concat_query, normalise_query
    from vidroute.search.lance_store import LanceStore

    corpus = SyntheticCorpus()
    path = Path(workdir) / f"scale-{n}"
    shutil.rmtree(path, ignore_errors=True)
    parts = num_partitions or max(16, int(math.sqrt(n)))
    store = LanceStore(path, index_threshold=n + 1, index_type=index_type, num_partitions=parts, candidates=candidates)
    default_nprobes = store.nprobes
    sweep = sorted(set(nprobes or [default_nprobes, 32, 64]))
    store.configure(StoreConfig(layout=corpus.layout))

    # Queries and their weights first, so the exact top 10 is computed while the data streams past once.
    qvs, dirichlet, kinds = corpus.queries(n_queries, corpus_size=n)
    texts = None
    if router is not None and route_texts:
        texts = [route_texts[i % len(route_texts)] for i in range(n_queries)]
        weights = [dict(router.route(t).weights) for t in texts]
    else:
        weights = [dict(zip(corpus.signals, w, strict=True)) for w in dirichlet]
    qmat = np.stack(
        [
            concat_query(corpus.layout, normalise_query(corpus.layout, qv), store.plan(qv, w, text=None)[2])
            for qv, w in zip(qvs, weights, strict=True)
        ]
    ).T.astype(np.float32)
    best = np.full((n_queries, 10), -np.inf, dtype=np.float32)
    best_idx = np.zeros((n_queries, 10), dtype=np.int64)

    t_insert = 0.0
    t0 = time.perf_counter()
    done = 0
    for packed, masks, vid in corpus.chunks(n):
        m = len(packed)
        _topk_merge(best, best_idx, (packed @ qmat).T, done, 10)  # (q, m) scores → per-query top 10
        cols = {
            "segment_id": [f"s{done + i}" for i in range(m)],
            "video_id": [f"v{v}" for v in vid],
            "path": [f"/synthetic/v{v}.mp4" for v in vid],
            "start": [float((done + i) % corpus.segments_per_video) * 10.0 for i in range(m)],
            "end": [float((done + i) % corpus.segments_per_video) * 10.0 + 10.0 for i in range(m)],
            "transcript": [""] * m,
            "title": [""] * m,
            "description": [""] * m,
            "people": [[]] * m,
            "genre": [""] * m,
            "date": [""] * m,
            "tags": [[]] * m,
            "keyframe": [None] * m,
            "text": [""] * m,
        }
        s = time.perf_counter()
        store.append_columns(cols, packed, masks)
        t_insert += time.perf_counter() - s
        done += m
        if log:
            log(f"scale {n}: {done:,} segments inserted ({t_insert:.0f} s in inserts)")
    gen_total = time.perf_counter() - t0
    del packed

    def one(i: int) -> tuple[list[str], float]:
        s = time.perf_counter()
        w = dict(router.route(texts[i]).weights) if texts is not None else weights[i]
        hits = store.search(qvs[i], w, k=10, fusion="raw")
        return [h.segment_id for h in hits], (time.perf_counter() - s) * 1000

    def measure(label: str) -> dict[str, Any]:
        for i in range(min(5, n_queries)):  # warm caches
            one(i)
        lat, rec = [], []
        for i in range(n_queries):
            ids, ms = one(i)
            lat.append(ms)
            rec.append(len({f"s{j}" for j in best_idx[i]} & set(ids)) / 10)
        out = {
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "recall10_vs_exact": float(np.mean(rec)),
            "recall10_vs_exact_min": float(np.min(rec)),
            "recall10_vs_exact_by_kind": {
                kind: float(np.mean([r for r, k in zip(rec, kinds, strict=True) if k == kind]))
                for kind in sorted(set(kinds))
            },
        }
        if log:
            log(f"scale {n} {label}: p50 {out['p50_ms']:.1f} ms, recall@10 {out['recall10_vs_exact']:.3f}")
        return out

    result: dict[str, Any] = {
        "segments": n,
        "signals": corpus.signals,
        "dim": corpus.dim,
        "topics": corpus.topics,
        "intrinsic_dim": corpus.intrinsic_dim,
        "insert_seconds": t_insert,
        "insert_rate_per_s": n / t_insert if t_insert else None,
        "generate_and_insert_seconds": gen_total,
        "queries": n_queries,
        "routing": texts is not None,
        "load_avg_start": os.getloadavg(),
    }
    store.warm()
    if n <= store.exact_limit:
        result["exact"] = measure("exact (in-memory int8 first pass + float32 rescoring)")
    s = time.perf_counter()
    store.create_vector_index()
    result["index"] = {
        "type": index_type,
        "per_signal": True,
        "partitions": parts,
        "candidates": candidates,
        "ann_candidates": store.ann_candidates,
        "build_seconds": time.perf_counter() - s,
    }
    if log:
        took = result["index"]["build_seconds"]
        log(f"scale {n}: {index_type} per-signal indexes ({parts} partitions) built in {took:.0f} s")
    result["indexed"] = {}
    exact_limit, store.exact_limit = store.exact_limit, 0  # measure the indexed path even where exact is default
    for npb in sweep:
        store.nprobes = npb
        result["indexed"][str(npb)] = measure(f"indexed nprobes={npb}")
    store.nprobes, store.exact_limit = default_nprobes, exact_limit
    default = result.get("exact") or result["indexed"][str(default_nprobes)]
    result["default_path"] = "exact" if "exact" in result else f"indexed nprobes={default_nprobes}"
    result.update({k: default[k] for k in ("p50_ms", "p95_ms", "recall10_vs_exact")})
    result["load_avg_end"] = os.getloadavg()
    result["disk_bytes"] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    store.close()
    if not keep:
        shutil.rmtree(path, ignore_errors=True)
    return result


def _route_texts(data_dir: Path, n: int = 500) -> list[str]:
    path = data_dir / "queries" / "real_queries_dev.jsonl"
    if not path.exists():
        return ["a dog barking at the mailman", "the speaker says we choose to go to the moon"]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["query"] for r in rows[:n]]


def run_search_bench(
    *,
    model: Path | str | None = None,
    retrieval: bool = True,
    scale: bool = True,
    sizes: list[int] | None = None,
    nprobes: list[int] | None = None,
    n_queries: int = 200,
    quick: bool = False,
    data_dir: Path | None = None,
    workdir: Path | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Everything `vidroute bench search` reports, with the flat keys the issue asks for on top."""
    import platform

    data_dir = Path(data_dir) if data_dir else default_data_dir()
    router = None
    if model is not None:
        from vidroute.search.engine import load_router

        router = load_router(model)
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "router_model": str(model) if model else None,
    }
    if retrieval:
        r = run_retrieval(data_dir=data_dir, router=router, log=log)
        out["retrieval"] = r
        w = r["weightings"]
        out["recall10_uniform"] = w["uniform"]["recall10"]
        out["recall10_oracle"] = w["oracle"]["recall10"]
        out["recall10_routed"] = w["routed"]["recall10"] if "routed" in w else None
        out["mrr_uniform"] = w["uniform"]["mrr"]
        out["mrr_routed"] = w["routed"]["mrr"] if "routed" in w else None
        if "routed" not in w:
            out["note_routed"] = "no --model given: routed weights need a router folder from `vidroute train`"
    if scale:
        sizes = sizes or ([20_000] if quick else [100_000, 1_000_000])
        nq = min(n_queries, 50) if quick else n_queries
        texts = _route_texts(data_dir) if router is not None else None
        tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="vidroute-bench-scale-"))
        tmp.mkdir(parents=True, exist_ok=True)
        out["scale"] = {}
        try:
            for n in sizes:
                res = run_scale(
                    n, workdir=tmp, n_queries=nq, router=router, route_texts=texts, nprobes=nprobes, log=log
                )
                out["scale"][str(n)] = res
                label = {100_000: "100k", 1_000_000: "1m"}.get(n, str(n))
                out[f"p50_ms_{label}"] = res["p50_ms"]
                out[f"p95_ms_{label}"] = res["p95_ms"]
                out[f"recall10_vs_exact_{label}"] = res["recall10_vs_exact"]
                idx = res["indexed"].get(str(LANCE_DEFAULT_NPROBES)) or next(iter(res["indexed"].values()))
                out[f"p50_ms_{label}_indexed"] = idx["p50_ms"]
                out[f"recall10_vs_exact_{label}_indexed"] = idx["recall10_vs_exact"]
        finally:
            if not workdir:
                shutil.rmtree(tmp, ignore_errors=True)
    return out
