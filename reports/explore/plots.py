"""The fronts as tables (Markdown) and plots (matplotlib, one figure per model x workload group).

Each plot projects the front onto tokens/s against one other objective; every
simulated point is drawn, the front is highlighted, and pruned points appear at
their optimistic bound (where they would sit at best), so a reader can see
why they were not simulated.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Sequence

from llmaccel.reports.text_outputs import MARK, write_text_output

FRONT_COLUMNS = (  # (header, row key, format, scale)
    ("design point", "label", "{}", None),
    ("recipe", "recipe", "{}", None),
    ("tokens/s", "decode_tokens_per_s", "{:.1f}", 1),
    ("tokens/J", "tokens_per_J", "{:.3f}", 1),
    ("TTFT ms", "ttft_s", "{:.1f}", 1e3),
    ("ms/token", "decode_ms_per_token", "{:.2f}", 1),
    ("W", "power_W", "{:.1f}", 1),
    ("LUT %", "share_LUT", "{:.1f}", 100),
    ("DSP %", "share_DSP", "{:.1f}", 100),
    ("URAM %", "share_URAM", "{:.1f}", 100),
    ("BRAM %", "share_BRAM36", "{:.1f}", 100),
    ("perplexity", "perplexity", "{:.2f}", 1),
)
AXES = {"tokens_per_J": "decode tokens/J", "ttft_s": "TTFT (s)", "resource_share": "resource share (max of LUT/DSP/URAM/BRAM)",
        "perplexity": "perplexity"}


def _cell(row: dict, key: str, fmt: str, scale: Optional[float]) -> str:
    v = row.get(key)
    if v is None:
        return "-"
    return fmt.format(v * scale) if scale else fmt.format(v)


def front_table(rows: Sequence[dict], with_quality: bool) -> str:
    """Markdown table of front rows, best tokens/s first."""
    cols = [c for c in FRONT_COLUMNS if with_quality or c[1] != "perplexity"]
    out = ["| " + " | ".join(c[0] for c in cols) + " |",
           "| " + " | ".join("---" if c[3] is None else "---:" for c in cols) + " |"]
    for r in sorted(rows, key=lambda r: (-(r.get("decode_tokens_per_s") or 0), r["hash"])):
        out.append("| " + " | ".join(_cell(r, *c[1:]) for c in cols) + " |")
    return "\n".join(out)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def plot_group(rows: Sequence[dict], objectives: Sequence[str], title: str, path: Path) -> Path:
    """One PNG: tokens/s (x) against each other objective (one panel each)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    others = [o for o in objectives if o != "decode_tokens_per_s" and o in AXES] or ["ttft_s"]
    fig, axes = plt.subplots(1, len(others), figsize=(4.2 * len(others), 3.8), squeeze=False)
    sim = [r for r in rows if r.get("status") == "simulated"]
    fr = [r for r in sim if r.get("on_front")]
    pr = [r for r in rows if r.get("pruned_by")]
    opt_key = {"tokens_per_J": "bound_tokens_per_J_max", "ttft_s": "est_ttft_s", "resource_share": "resource_share",
               "perplexity": "perplexity"}
    for ax, o in zip(axes[0], others):
        ax.scatter([r["bound_decode_tokens_per_s_max"] for r in pr], [r.get(opt_key[o]) for r in pr], s=10, marker="x",
                   color="0.75", label="pruned (at its optimistic bound)")
        ax.scatter([r["decode_tokens_per_s"] for r in sim], [r.get(o) for r in sim], s=14, color="tab:blue",
                   alpha=0.5, label="simulated")
        ax.scatter([r["decode_tokens_per_s"] for r in fr], [r.get(o) for r in fr], s=36, facecolor="none",
                   edgecolor="tab:red", linewidth=1.4, label="Pareto front")
        ax.set_xlabel("decode tokens/s")
        ax.set_ylabel(AXES[o])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from llmaccel.reports.figures import save_png
    return save_png(fig, path, flag="--out", dpi=110)


def check_front_outputs(spec: Any, out_dir: str | Path) -> None:
    """Refuse, before any work, output files in ``out_dir`` that llmaccel did not write."""
    from llmaccel.reports.figures import check_png_dest
    from llmaccel.reports.text_outputs import is_ours
    from llmaccel.sparse_dsp.safe_paths import check_output_file
    out = Path(out_dir)
    check_output_file(out / "front.md", "--out", is_ours, "report")
    for m in spec.models:
        for w in spec.workloads:
            check_png_dest(out / f"front-{slug(f'{m} p{w.prefill}+d{w.decode}')}.png", "--out")


def results_digest(result: Any) -> str:
    """A hash of everything the tables and plots show: same digest, same files."""
    import hashlib
    from llmaccel.reports.explore.points import canonical
    body = [result.spec.name, result.objectives, result.store, result.sweep,
            [{k: v for k, v in r.items() if k not in ("design",)} for r in result.rows]]
    return hashlib.sha256(canonical(body).encode()).hexdigest()[:24]


def write_fronts(result: Any, out_dir: str | Path) -> dict[str, Any]:
    """Write ``front.md`` (tables, plots linked) and one PNG per group into ``out_dir``.

    A rerun whose results are unchanged (same digest, recorded in front.md) keeps the files it
    wrote last time instead of drawing them again: the output would be the same, and drawing is
    most of the time of a rerun from the store."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with_q = result.spec.quality is not None
    digest = results_digest(result)
    first = f"<!-- {MARK} explore; results {digest} -->"
    pngs = {g: out / f"front-{slug(g)}.png" for g in sorted(result.fronts)}
    md_path = out / "front.md"
    if md_path.is_file() and all(p.is_file() for p in pngs.values()):
        with open(md_path, encoding="utf-8", errors="replace") as fh:
            if fh.readline().rstrip("\n") == first:
                return {"table": str(md_path), "plots": {g: str(p) for g, p in pngs.items()}, "unchanged": True}
    md = [first, f"# Pareto fronts: {result.spec.name}", "",
          f"Objectives: {', '.join(result.objectives)}. Figures are simulated (cycle-approximate engine); "
          f"store `{result.store}`, sweep `{result.sweep}`.", ""]
    plots = {}
    for g in sorted(result.fronts):
        rows = [r for r in result.rows if r["group"] == g]
        png = plot_group(rows, result.objectives, f"{result.spec.name}: {g}", out / f"front-{slug(g)}.png")
        plots[g] = str(png)
        md += [f"## {g}", "", f"![front {g}]({png.name})", "",
               front_table([r for r in rows if r.get("on_front")], with_q), ""]
    path = write_text_output(out / "front.md", "\n".join(md), "--out")
    return {"table": str(path), "plots": plots}
