"""Evaluation report: a self-contained HTML page (plots embedded as PNG), a Markdown summary and metrics.json."""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import require
from vidroute.evaluate.run import EvalOutcome, dumps, worst_rows
from vidroute.records import write_jsonl

log = logging.getLogger(__name__)

PALETTE = {"visual": "#3b82f6", "audio": "#f59e0b", "transcription": "#10b981", "metadata": "#a855f7"}
EXTRA_COLOURS = ["#ef4444", "#14b8a6", "#64748b", "#eab308", "#ec4899"]


def _colour(signal: str, i: int) -> str:
    return PALETTE.get(signal, EXTRA_COLOURS[i % len(EXTRA_COLOURS)])


# --- plots ---------------------------------------------------------------------------------------------


def _plt():
    mpl = require("matplotlib", "train")
    mpl.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titleweight": "bold",
        }
    )
    return plt


def _save(fig: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def plot_confusion(cm: np.ndarray, labels: Sequence[str], path: Path, title: str = "Dominant signal") -> bytes:
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    row_sum = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, row_sum, out=np.zeros_like(cm, dtype=float), where=row_sum > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", color="white" if frac[i, j] > 0.55 else "#1f2937")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("router")
    ax.set_ylabel("reference (teacher)")
    ax.set_title(title)
    return _save(fig, path)


def plot_scatter(y_true: np.ndarray, y_pred: np.ndarray, signals: Sequence[str], path: Path) -> bytes:
    plt = _plt()
    k = len(signals)
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.8), sharex=True, sharey=True)
    rng = np.random.default_rng(0)
    for i, (ax, s) in enumerate(zip(np.atleast_1d(axes), signals, strict=True)):
        # Teacher labels sit on a 0.1 grid: a little horizontal jitter shows how many points overlap.
        x = y_true[:, i] + rng.uniform(-0.012, 0.012, len(y_true))
        ax.scatter(x, y_pred[:, i], s=10, alpha=0.55, color=_colour(s, i), edgecolors="none")
        ax.plot([0, 1], [0, 1], color="#9ca3af", lw=0.8, ls="--")
        err = float(np.abs(y_true[:, i] - y_pred[:, i]).mean()) if len(y_true) else float("nan")
        ax.set_title(f"{s}  (MAE {err:.3f})", fontsize=9)
        ax.set_xlim(-0.05, 1.0)
        ax.set_ylim(-0.05, 1.0)
        ax.set_xlabel("teacher")
    np.atleast_1d(axes)[0].set_ylabel("router")
    fig.suptitle("Teacher vs router weight, per signal", fontweight="bold", y=1.03)
    return _save(fig, path)


def plot_latency(samples_ms: Sequence[float], stats: Mapping[str, float], path: Path) -> bytes:
    plt = _plt()
    v = np.asarray(samples_ms, dtype=float)
    fig, ax = plt.subplots(figsize=(6.0, 2.8))
    hi = np.percentile(v, 99.5) if v.size else 1.0
    ax.hist(np.clip(v, None, hi), bins=60, color="#3b82f6", alpha=0.8)
    for key, ls in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
        if key in stats:
            ax.axvline(stats[key], color="#111827", ls=ls, lw=1, label=f"{key[:-3]} {stats[key]:.2f} ms")
    ax.set_xlabel("ms per query (single queries after warm-up; top 0.5% clipped)")
    ax.set_ylabel("queries")
    ax.set_title("Routing latency")
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_cascade(points: Sequence[Mapping[str, float]], path: Path, reference: Mapping[str, float] | None) -> bytes:
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    cost = np.array([p["usd_per_million"] for p in points])
    quality = np.array([p["rubric_mean"] for p in points])
    ax.plot(cost, quality, marker="o", color="#3b82f6", label="vidroute cascade")
    # Label thresholds, skipping points that sit on top of the last labelled one.
    last = None
    for p in points:
        xy = (np.log10(max(p["usd_per_million"], 1e-9)), p["rubric_mean"])
        if last is not None and abs(xy[0] - last[0]) < 0.25 and abs(xy[1] - last[1]) < 0.12:
            continue
        ax.annotate(
            f"t={p['threshold']:g}",
            (p["usd_per_million"], p["rubric_mean"]),
            textcoords="offset points",
            xytext=(5, -10),
            fontsize=7,
            color="#4b5563",
        )
        last = xy
    if reference:
        ax.scatter(
            [reference["usd_per_million"]],
            [reference["judge_score"]],
            marker="*",
            s=140,
            color="#ef4444",
            zorder=5,
            label="reference (Nova Micro, judge)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("USD per 1M queries (log)")
    ax.set_ylabel("mean rubric level (1–5)")
    ax.set_title("Quality vs cost")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    th = [p["threshold"] for p in points]
    ax2.plot(th, [p["escalation_rate"] for p in points], marker="o", color="#f59e0b", label="escalation rate")
    ax2.plot(th, [p["dominant_accuracy"] for p in points], marker="s", color="#10b981", label="dominant accuracy")
    ax2.set_xlabel("confidence threshold")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("Escalation and agreement")
    ax2.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def plot_rubric(det: Mapping[str, int], judge: Mapping[str, int] | None, path: Path) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    lv = np.arange(1, 6)
    w = 0.38 if judge else 0.6
    ax.bar(
        lv - (w / 2 if judge else 0), [det.get(str(i), 0) for i in lv], width=w, color="#3b82f6", label="deterministic"
    )
    if judge:
        ax.bar(lv + w / 2, [judge.get(str(i), 0) for i in lv], width=w, color="#a855f7", label="LLM judge")
    ax.set_xticks(lv)
    ax.set_xlabel("rubric level")
    ax.set_ylabel("queries")
    ax.set_title("Rubric levels")
    ax.legend(frameon=False)
    return _save(fig, path)


# --- text helpers --------------------------------------------------------------------------------------


def _f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    if isinstance(x, float | np.floating):
        if not np.isfinite(x):
            return "–"
        return f"{x:,.{nd}f}"
    return str(x)


def _usd(x: float | None) -> str:
    if x is None:
        return "–"
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def abbreviations(signals: Sequence[str]) -> dict[str, str]:
    """The shortest prefix that tells the signals apart (V/A/T/M for the default four)."""
    for n in range(1, max(map(len, signals)) + 1):
        short = {s: s[:n].capitalize() for s in signals}
        if len(set(short.values())) == len(signals):
            return short
    return {s: s for s in signals}


def _weights(d: Mapping[str, float], short: Mapping[str, str], *, bold_top: bool = False) -> str:
    top = max(d, key=lambda k: d[k])
    parts = []
    for k, v in d.items():
        text = f"{short[k]} {v:.2f}"
        parts.append(f"<b>{text}</b>" if bold_top and k == top else text)
    return _Raw(f'<span class="w">{" · ".join(parts)}</span>') if bold_top else " · ".join(parts)


def headline(outcome: EvalOutcome, subsets: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, str]]:
    """The handful of numbers a reader wants first, each with the reference's number beside it."""
    m = outcome.metrics
    ref = m["reference"]
    cards = [
        {
            "label": "Rubric (deterministic)",
            "value": f"{m['rubric']['mean']:.2f} / 5",
            "ref": f"reference: {ref['judge_score']:.1f} (LLM judge, leaky v2)",
        },
        {
            "label": "Dominant-signal agreement",
            "value": f"{m['agreement']['dominant_accuracy']:.1%}",
            "ref": "with the teacher",
        },
        {"label": "Mean absolute error", "value": f"{m['agreement']['mae']:.3f}", "ref": "per weight, 0–1 scale"},
        {
            "label": "Latency p50 / p99",
            "value": f"{m['latency']['p50_ms']:.2f} / {m['latency']['p99_ms']:.2f} ms",
            "ref": f"reference: {ref['latency_ms_mean']:.0f} ms mean",
        },
        {
            "label": "Cost per 1M queries",
            "value": _usd(m["cost"]["student_usd_per_million_single"]),
            "ref": f"reference: ≈{_usd(ref['usd_per_million'])} (Nova Micro)",
        },
    ]
    if m.get("judge") and m["judge"].get("mean") is not None:
        cards.insert(
            1,
            {
                "label": "Rubric (LLM judge)",
                "value": f"{m['judge']['mean']:.2f} / 5",
                "ref": f"{m['judge']['model_id']}, {m['judge']['failures']} failures",
            },
        )
    return cards


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, num_from: int = 1, num_to: int | None = None) -> str:
    """An HTML table; columns `num_from` up to (not including) `num_to` are right-aligned numbers."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = []
    for r in rows:
        cells = []
        for j, c in enumerate(r):
            cls = ' class="num"' if j >= num_from and (num_to is None or j < num_to) else ""
            cells.append(f"<td{cls}>{c if isinstance(c, _Raw) else html.escape(str(c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """HTML that must not be escaped again."""


def _md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _sections(
    outcome: EvalOutcome, subsets: Mapping[str, Mapping[str, Any]] | None, *, html_cells: bool = False
) -> dict[str, Any]:
    """Table rows shared by the HTML and Markdown renderings."""
    m = outcome.metrics
    sig = outcome.signals
    a = m["agreement"]
    out: dict[str, Any] = {}
    out["agreement"] = [
        ["dominant-signal accuracy", _f(a["dominant_accuracy"])],
        ["MAE (all weights)", _f(a["mae"])],
        *[[f"MAE {s}", _f(a["mae_per_signal"][s])] for s in sig],
        ["Jensen–Shannon divergence (bits)", _f(a["js_divergence"], 4)],
        ["queries", _f(a["n"])],
    ]
    cm = np.array(a["confusion"]["matrix"])
    out["confusion"] = [[f"ref {s}", *[int(x) for x in cm[i]], int(cm[i].sum())] for i, s in enumerate(sig)]
    r = m["rubric"]
    rub = [["deterministic", _f(r["mean"], 2), *[r["histogram"].get(str(i), 0) for i in range(1, 6)], "–"]]
    j = m.get("judge")
    if j:
        rub.append(
            [
                f"LLM judge ({j['model_id']})",
                _f(j["mean"], 2),
                *[j["histogram"].get(str(i), 0) for i in range(1, 6)],
                j["failures"],
            ]
        )
    out["rubric"] = rub
    if j:
        ag = j["agreement_with_deterministic"]
        out["judge_agreement"] = [
            ["answers judged / failed", f"{ag['n_judged']} / {ag['n_failed']}"],
            ["exact agreement", _f(ag["exact"])],
            ["within ±1 level", _f(ag["within_1"])],
            ["Cohen's κ (unweighted)", _f(ag["kappa"])],
            ["Cohen's κ (quadratic)", _f(ag["kappa_quadratic"])],
            ["judge tokens in / out", f"{j['input_tokens']:,} / {j['output_tokens']:,}"],
        ]
    if a.get("per_group"):
        out["per_group"] = [
            [g, d["n"], _f(d["dominant_accuracy"]), _f(d["mae"]), _f(d["js_divergence"], 4)]
            for g, d in a["per_group"].items()
        ]
    lat = m["latency"]
    out["latency"] = [
        ["p50", _f(lat["p50_ms"])],
        ["p95", _f(lat["p95_ms"])],
        ["p99", _f(lat["p99_ms"])],
        ["mean", _f(lat["mean_ms"])],
        ["max", _f(lat["max_ms"])],
        ["CPU ms per query", _f(lat["cpu_ms_per_query"])],
        ["timed queries (after warm-up)", f"{lat['n']} ({lat['warmup']} warm-up)"],
    ]
    out["throughput"] = [
        [d["batch_size"], _f(d["routes_per_second"], 0), _f(d["cpu_ms_per_query"], 3), d["queries"]]
        for d in m["throughput"].values()
    ]
    c = m["cost"]
    t = c["teacher"]
    rc = c["reference"]
    out["cost"] = [
        [
            "vidroute student, single queries",
            _usd(c["student_usd_per_million_single"]),
            f"measured CPU time × ${c['usd_per_vcpu_hour']}/vCPU-hour",
        ],
        ["vidroute student, best batch", _usd(c["student_usd_per_million_batch"]), "same, batched"],
        [f"teacher ({', '.join(t['model_ids'])})", _usd(t["usd_per_million"]), t["cost_source"]],
        ["reference: distilled Nova Micro", _usd(rc["nova_micro_distilled_usd_per_1m_queries"]), rc["note"]],
        ["reference: Claude Haiku, long prompt", _usd(rc["haiku_long_prompt_usd_per_1m_queries"]), rc["note"]],
    ]
    out["cascade"] = [
        [
            _f(p["threshold"], 2),
            f"{p['escalation_rate']:.1%}",
            _f(p["rubric_mean"], 2),
            _f(p["dominant_accuracy"]),
            _f(p["mae"]),
            _f(p["expected_latency_ms"], 1),
            _usd(p["usd_per_million"]),
        ]
        for p in m["cascade"]["points"]
    ]
    short = abbreviations(sig)
    out["legend"] = ", ".join(f"{v} = {k}" for k, v in short.items())
    out["worst"] = [
        [
            row["query"],
            _weights(row["reference"], short, bold_top=html_cells),
            _weights(row["predicted"], short, bold_top=html_cells),
            _f(row["abs_error"]),
            row["rubric"],
        ]
        for row in worst_rows(outcome, 12)
    ]
    if subsets:
        out["subsets"] = [
            [
                name,
                _f(s.get("n")),
                _f(s.get("rubric_mean"), 2),
                _f(s.get("dominant_accuracy")),
                _f(s.get("mae")),
                _f(s.get("js_divergence"), 4),
                s.get("note", ""),
            ]
            for name, s in subsets.items()
        ]
    return out


# --- HTML ----------------------------------------------------------------------------------------------

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--accent:#2563eb}
*{box-sizing:border-box}body{margin:0;font:14px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
color:var(--fg);background:var(--bg)}main{max-width:1100px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:36px 0 10px;padding-bottom:6px;
border-bottom:1px solid var(--line)}h3{font-size:14px;margin:18px 0 6px;color:#374151}
.sub{color:var(--muted);margin:0 0 18px}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));
gap:12px}.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:24px;font-weight:650;margin:4px 0 2px}.card .r{color:var(--muted);font-size:12px}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden;
margin:6px 0 12px;font-size:13px}th,td{padding:6px 12px;text-align:left;border-bottom:1px solid var(--line);
vertical-align:top}th{background:#f3f4f6;font-weight:600}tr:nth-child(even) td{background:#fafafa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
@media(max-width:800px){.grid2{grid-template-columns:1fr}}
img{max-width:100%;background:#fff;border:1px solid var(--line);border-radius:8px;padding:6px}
.w{white-space:nowrap;font-variant-numeric:tabular-nums}
.note{color:var(--muted);font-size:12.5px;max-width:900px}code{background:#eef2ff;padding:1px 4px;border-radius:4px}
"""


def render_html(
    outcome: EvalOutcome,
    images: Mapping[str, bytes],
    *,
    title: str,
    subsets: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    m = outcome.metrics
    sec = _sections(outcome, subsets, html_cells=True)
    sig = outcome.signals

    def img(name: str, alt: str) -> str:
        if name not in images:
            return ""
        b64 = base64.b64encode(images[name]).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'

    cards = "".join(
        f'<div class="card"><div class="l">{html.escape(c["label"])}</div><div class="v">{html.escape(c["value"])}'
        f'</div><div class="r">{html.escape(c["ref"])}</div></div>'
        for c in headline(outcome, subsets)
    )
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body><main>',
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">model <code>{html.escape(str(m.get("model", "")))}</code> · '
        + (
            f"data <code>{html.escape(str(m.get('data') or m.get('name')))}</code> · "
            if m.get("data") or m.get("name")
            else ""
        )
        + f"{m['n']} queries · "
        f"{html.escape(m['created_at'])} · {m['machine']['cpus']} CPU cores</p>",
        f'<div class="cards">{cards}</div>',
    ]
    if "subsets" in sec:
        parts += [
            "<h2>Evaluation sets</h2>",
            _table(["set", "queries", "rubric", "dominant acc.", "MAE", "JS (bits)", "note"], sec["subsets"], num_to=6),
        ]
    parts += [
        "<h2>Agreement with the teacher</h2>",
        '<div class="grid2"><div>',
        _table(["metric", "value"], sec["agreement"]),
        "<h3>Confusion matrix (dominant signal)</h3>",
        _table(["", *sig, "total"], sec["confusion"]),
        f'<p class="note">Ties in the reference (e.g. two signals at 0.4) count as agreement when the router picks '
        f"any of the tied signals.</p></div><div>{img('confusion', 'confusion matrix')}</div></div>",
        img("scatter", "teacher vs router weights"),
    ]
    if "per_group" in sec:
        parts += ["<h3>Per intent</h3>", _table(["intent", "n", "dominant acc.", "MAE", "JS"], sec["per_group"])]
    parts += [
        "<h2>Rubric (1–5)</h2>",
        '<div class="grid2"><div>',
        _table(["scorer", "mean", "1", "2", "3", "4", "5", "failed"], sec["rubric"]),
    ]
    if "judge_agreement" in sec:
        parts += ["<h3>LLM judge vs deterministic scorer</h3>", _table(["", "value"], sec["judge_agreement"])]
    parts += [
        '<p class="note">Deterministic levels: 5 = every weight within 0.05 of the reference; 4 = within 0.10; '
        "3 = same top signal and MAE &lt; 0.15; 2 = otherwise; 1 = invalid or MAE &gt; 0.30. The published rubric "
        "also grades reasoning; the students emit none, so the deterministic scorer grades weights only.</p>",
        f"</div><div>{img('rubric', 'rubric levels')}</div></div>",
        "<h2>Latency and throughput</h2>",
        '<div class="grid2"><div>',
        _table(["single query", "ms"], sec["latency"]),
        f"</div><div>{_table(['batch size', 'routes/s', 'CPU ms/query', 'queries'], sec['throughput'], num_from=0)}"
        "</div></div>",
        img("latency", "latency histogram"),
        "<h2>Cost per 1M queries</h2>",
        _table(["router", "USD / 1M queries", "how"], sec["cost"], num_from=1, num_to=2),
        "<h2>Cascade: student first, teacher when unsure</h2>",
        _table(
            ["threshold", "escalated", "rubric", "dominant acc.", "MAE", "latency ms", "USD / 1M"],
            sec["cascade"],
            num_from=0,
        ),
        img("cascade", "cascade quality vs cost"),
        f'<p class="note">{html.escape(m["cascade"]["assumption"])}. Teacher latency '
        f"{m['cascade']['teacher_latency_ms']:.0f} ms ({html.escape(m['cost']['teacher']['latency_source'])}).</p>",
        "<h2>Largest disagreements</h2>",
        _table(["query", "reference", "router", "abs. error", "rubric"], sec["worst"], num_from=3),
        f'<p class="note">{html.escape(sec["legend"])}; the top weight is in bold.</p>',
    ]
    if notes:
        parts += ["<h2>Notes</h2><ul>", *[f'<li class="note">{html.escape(n)}</li>' for n in notes], "</ul>"]
    parts.append("</main></body></html>")
    return "\n".join(parts)


# --- Markdown ------------------------------------------------------------------------------------------


def render_markdown(
    outcome: EvalOutcome,
    *,
    title: str,
    subsets: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    m = outcome.metrics
    sec = _sections(outcome, subsets)
    lines = [f"# {title}", "", f"Model `{m.get('model', '')}`, {m['n']} queries, {m['created_at']}.", ""]
    lines += [_md_table(["", "vidroute", "reference"], [[c["label"], c["value"], c["ref"]] for c in headline(outcome)])]
    if "subsets" in sec:
        lines += [
            "",
            "## Evaluation sets",
            "",
            _md_table(["set", "queries", "rubric", "dominant acc.", "MAE", "JS", "note"], sec["subsets"]),
        ]
    lines += ["", "## Agreement", "", _md_table(["metric", "value"], sec["agreement"])]
    lines += ["", "## Rubric", "", _md_table(["scorer", "mean", "1", "2", "3", "4", "5", "failed"], sec["rubric"])]
    if "judge_agreement" in sec:
        lines += ["", _md_table(["judge vs deterministic", "value"], sec["judge_agreement"])]
    lines += ["", "## Latency", "", _md_table(["single query", "ms"], sec["latency"]), ""]
    lines += [_md_table(["batch size", "routes/s", "CPU ms/query", "queries"], sec["throughput"])]
    lines += ["", "## Cost per 1M queries", "", _md_table(["router", "USD / 1M", "how"], sec["cost"])]
    lines += [
        "",
        "## Cascade",
        "",
        _md_table(
            ["threshold", "escalated", "rubric", "dominant acc.", "MAE", "latency ms", "USD / 1M"], sec["cascade"]
        ),
        "",
        f"_{m['cascade']['assumption']}._",
    ]
    lines += [
        "",
        "## Largest disagreements",
        "",
        _md_table(["query", "reference", "router", "abs. error", "rubric"], sec["worst"][:8]),
        "",
        f"_{sec['legend']}._",
    ]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    lines += ["", "Full report with plots: `report.html`; all numbers: `metrics.json`; per-query: `predictions.jsonl`."]
    return "\n".join(lines) + "\n"


def write_report(
    outcome: EvalOutcome,
    outdir: str | Path,
    *,
    title: str | None = None,
    subsets: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Path]:
    """Write report.html, summary.md, metrics.json, predictions.jsonl and the PNG plots into `outdir`."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    title = title or f"vidroute evaluation: {outcome.metrics.get('name') or 'router'}"
    m = outcome.metrics
    images: dict[str, bytes] = {}
    images["confusion"] = plot_confusion(
        np.array(m["agreement"]["confusion"]["matrix"]), outcome.signals, out / "confusion.png"
    )
    images["scatter"] = plot_scatter(outcome.y_true, outcome.y_pred, outcome.signals, out / "scatter.png")
    images["latency"] = plot_latency(outcome.latency_samples_ms, m["latency"], out / "latency.png")
    images["cascade"] = plot_cascade(m["cascade"]["points"], out / "cascade.png", m["reference"])
    judge_hist = m["judge"]["histogram"] if m.get("judge") else None
    images["rubric"] = plot_rubric(m["rubric"]["histogram"], judge_hist, out / "rubric.png")

    paths = {name: out / f"{name}.png" for name in images}
    paths["html"] = out / "report.html"
    paths["html"].write_text(render_html(outcome, images, title=title, subsets=subsets, notes=notes), "utf-8")
    paths["markdown"] = out / "summary.md"
    paths["markdown"].write_text(render_markdown(outcome, title=title, subsets=subsets, notes=notes), "utf-8")
    paths["metrics"] = out / "metrics.json"
    body = dict(m)
    if subsets:
        body["subsets"] = dict(subsets)
    paths["metrics"].write_text(dumps(body) + "\n", "utf-8")
    paths["predictions"] = out / "predictions.jsonl"
    write_jsonl(paths["predictions"], outcome.rows())
    log.info("report written to %s", out)
    return paths
