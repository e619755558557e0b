"""Render a comparison report: one self-contained HTML page and its Markdown twin.

Every plot sits beside the table of the numbers it draws; every table row says
where its figures come from (simulated / measured / modelled), and every
section repeats the provenance line (model version, commit, date). The HTML
has no script and fetches nothing: plots are inline base64 PNGs and the style
sheet is inline.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence

from llmaccel.reports.comparison.collect import METRICS, ReportData
from llmaccel.reports.explore.plots import slug
from llmaccel.reports.text_outputs import MARK as OUR_MARK, is_ours, write_text_output
from llmaccel.errors import LlmaccelError

MARK = f"{OUR_MARK} report"      # our outputs carry this; a file without it is not ours to overwrite
CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}
.pair{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
figure{margin:0}img{max-width:640px;height:auto;border:1px solid #ddd}
table{border-collapse:collapse;font-size:0.85em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child,td.src{text-align:left}.prov{color:#555;font-size:0.8em}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:0.5em 1em}"""


def _wl(row: dict) -> str:
    return f"p{row['prefill']}+d{row['decode']}"


def _fmt(v: Any, key: str) -> str:
    if v is None:
        return "-"
    if key == "ttft_s":
        return f"{v * 1e3:.1f} ms"
    if key == "tokens_per_J":
        return f"{v:.3f}"
    return f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _systems(rows: Sequence[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        if r["system"] not in seen:
            seen.append(r["system"])
    return seen


def metric_table(rows: Sequence[dict], key: str) -> tuple[list[str], list[list[str]]]:
    """(header, body) of one metric: a row per system, a column per workload, the source per system."""
    wls = list(dict.fromkeys(_wl(r) for r in rows))
    head = ["system", "source", *wls]
    body = []
    for s in _systems(rows):
        srows = [r for r in rows if r["system"] == s]
        srcs = "/".join(sorted({r.get(f"source_{key}", r["source"]) for r in srows}))
        cells = [next((_fmt(r.get(key), key) for r in srows if _wl(r) == w), "-") for w in wls]
        body.append([s, srcs, *cells])
    return head, body


def metric_plot(rows: Sequence[dict], key: str, label: str, unit: str, title: str, path: Path) -> bytes:
    """Grouped bars: workloads on x, one bar per system (hatched = GPU); written to ``path``, bytes returned."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    wls = list(dict.fromkeys(_wl(r) for r in rows))
    systems = _systems(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.9))
    width = 0.8 / max(1, len(systems))
    scale = 1e3 if key == "ttft_s" else 1.0
    for i, s in enumerate(systems):
        srows = {_wl(r): r for r in rows if r["system"] == s}
        vals = [(srows[w].get(key) or 0) * scale if w in srows else 0 for w in wls]
        kind = next(iter(srows.values()))["kind"]
        src = next(iter(srows.values()))["source"]
        ax.bar([j + (i - (len(systems) - 1) / 2) * width for j in range(len(wls))], vals, width,
               label=f"{s} ({src})", hatch="//" if kind == "GPU" else None, edgecolor="0.3", linewidth=0.4)
    ax.set_xticks(range(len(wls)), wls)
    ax.set_xlabel("workload (prompt + generated tokens)")
    ax.set_ylabel(f"{label} ({'ms' if key == 'ttft_s' else unit})")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6.5, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    from llmaccel.reports.figures import save_png
    return save_png(fig, path, flag="--out", dpi=100).read_bytes()


def _html_table(head: list[str], body: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    rows = "".join("<tr>" + "".join(f'<td{" class=src" if j == 1 else ""}>{html.escape(c)}</td>'
                                    for j, c in enumerate(r)) + "</tr>" for r in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{rows}</tbody></table>"


def _md_table(head: list[str], body: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---", "---"] + ["---:"] * (len(head) - 2)) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def _sources_text(data: ReportData) -> str:
    return ("Sources: simulated = llmaccel's cycle-approximate simulator and its power model "
            "(simulator/power.py: measured idle board power + resource x activity x energy per event, each "
            "coefficient sourced or labelled an estimate in simulator/presets/power); "
            f"measured = gpu_baseline/measurements (NVML energy); modelled = {data.provenance.gpu_model}. "
            + data.provenance.line() + ".")


def write_report(data: ReportData, out_dir: str | Path) -> dict[str, str]:
    """Write report.html, report.md and img/*.png into ``out_dir``; refuse to overwrite files not ours."""
    from llmaccel.reports.figures import check_png_dest
    from llmaccel.sparse_dsp.safe_paths import check_output_file
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LlmaccelError(f"--out: '{out}' exists and is not a directory")
    html_path, md_path = out / "report.html", out / "report.md"
    for p in (html_path, md_path):                 # refuse before any work, and before writing any plot
        check_output_file(p, "--out", is_ours, "report")
    for m in data.spec.models:
        for key, *_ in METRICS:
            check_png_dest(out / "img" / f"{slug(m)}-{slug(key)}.png", "--out")
    spec, prov = data.spec, data.provenance
    title = spec.title or f"{spec.name}: FPGA designs against GPUs"
    src = _sources_text(data)
    H = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{MARK}">',
         f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>", f'<p class="prov">{html.escape(src)}</p>']
    M = [f"<!-- {MARK} -->", f"# {title}", "", src, ""]
    for n in data.notes:
        H.append(f'<p class="note">{html.escape(n)}</p>')
        M += [f"> **Note.** {n}", ""]
    for model in spec.models:
        mrows = [r for r in data.rows if r["model"] == model]
        H.append(f"<h2>{html.escape(model)}</h2>")
        M += [f"## {model}", ""]
        for key, label, unit, higher in METRICS:
            t = f"{model}: {label} ({unit}, {'higher' if higher else 'lower'} is better)"
            name = f"{slug(model)}-{slug(key)}.png"
            png = metric_plot(mrows, key, label, unit, t, out / "img" / name)
            head, body = metric_table(mrows, key)
            b64 = base64.b64encode(png).decode()
            H += [f"<section><h3>{html.escape(t)}</h3><div class=\"pair\"><figure>"
                  f'<img src="data:image/png;base64,{b64}" alt="{html.escape(t)}" width="640" height="390">'
                  f"</figure>{_html_table(head, body)}</div><p class=\"prov\">{html.escape(src)}</p></section>"]
            M += [f"### {t}", "", f"![{t}](img/{name})", "", _md_table(head, body), "", f"*{src}*", ""]
    # every figure of every row, one table
    cols = ["system", "kind", "source", "model", "recipe", "prefill", "decode", "decode_tokens_per_s",
            "tokens_per_J", "ttft_s", "decode_ms_per_token", "power_W"]
    body = [[str(r.get(c)) if not isinstance(r.get(c), float) else f"{r[c]:.4g}" for c in cols] for r in data.rows]
    H += ["<h2>All figures</h2>", _html_table(cols, body), f'<p class="prov">{html.escape(src)}</p>']
    M += ["## All figures", "", _md_table(cols, body), "", f"*{src}*", ""]
    H += [f'<p class="prov">FPGA points are stored in {html.escape(Path(data.store).name)} '
          f"(SQLite, one row per point). Spec sha256 {prov.spec_sha256}.</p></body></html>"]
    M += [f"FPGA points are stored in `{Path(data.store).name}` (SQLite, one row per point). "
          f"Spec sha256 {prov.spec_sha256}.", ""]
    write_text_output(md_path, "\n".join(M), "--out")
    write_text_output(html_path, "\n".join(H), "--out")
    return {"html": str(html_path), "markdown": str(md_path)}
