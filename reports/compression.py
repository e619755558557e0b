"""Tables and plots of compression recipes: perplexity against bits stored per weight."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def recipe_table(rows: Sequence[dict]) -> str:
    """Markdown table of eval rows (name, avg_bits, storage_bits_per_weight, sparsity, perplexity)."""
    lines = ["| recipe | avg code bits | stored bits/weight | sparsity | perplexity | vs fp32 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    base = next((r["perplexity"] for r in rows if r["name"] == "fp32"), None)
    for r in rows:
        rel = f"{100 * (r['perplexity'] / base - 1):+.2f}%" if base else "-"
        lines.append(f"| {r['name']} | {r['avg_bits']:.2f} | {r['storage_bits_per_weight']:.2f} | "
                     f"{r['sparsity']:.2f} | {r['perplexity']:.3f} | {rel} |")
    return "\n".join(lines)


def plot_recipes(rows: Sequence[dict], path: str | Path, title: str = "", flag: str = "--plot") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in rows:
        marker = "s" if r["sparsity"] > 0 else "o"
        ax.scatter(r["storage_bits_per_weight"], r["perplexity"], marker=marker)
        ax.annotate(r["name"], (r["storage_bits_per_weight"], r["perplexity"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("stored bits per weight (codes + indices + scales + zeros)")
    ax.set_ylabel("held-out perplexity")
    ax.set_title(title or "compression recipes")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from llmaccel.reports.figures import save_png
    return save_png(fig, path, flag)
