"""The comparison report: self-contained HTML (nothing fetched), a Markdown twin with the same tables,
every figure tagged with its source, every plot beside its table, provenance on every section."""
from __future__ import annotations

import base64
import io
import re
import subprocess
import time

import pytest

from llmaccel.reports.explore.points import code_version
from tests.reports._specs import ROOT, write_tiny_report

SOURCES = {"simulated", "measured", "modelled"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rc, out = write_tiny_report(tmp_path_factory.mktemp("rep"))
    assert rc == 0
    return out


def _html_tables(html: str) -> list[list[list[str]]]:
    tables = []
    for t in re.findall(r"<table>(.*?)</table>", html, re.S):
        rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in re.findall(r"<tr>(.*?)</tr>", t, re.S)]
        tables.append(rows)
    return tables


def _md_tables(md: str) -> list[list[list[str]]]:
    tables, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                cur.append(cells)
        elif cur:
            tables.append(cur)
            cur = []
    return tables


def test_html_is_self_contained(report):
    from PIL import Image
    html = (report / "report.html").read_text()
    assert "<script" not in html
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs
    assert "url(" not in html and "@import" not in html          # the inline style sheet fetches nothing
    for r in refs:
        img = Image.open(io.BytesIO(base64.b64decode(r.split(",", 1)[1])))
        img.load()
        assert img.size[0] > 100 and img.size[1] > 100


def test_every_plot_has_its_table_beside_it(report):
    html = (report / "report.html").read_text()
    pairs = re.findall(r'<div class="pair">(.*?)</div>', html, re.S)
    assert len(pairs) == 4                                       # tokens/s, tokens/J, TTFT, ms/token
    for p in pairs:
        assert p.count("<img") == 1 and p.count("<table>") == 1


def test_every_figure_says_where_it_comes_from(report):
    html = (report / "report.html").read_text()
    tables = _html_tables(html)
    for t in tables:
        head = t[0]
        col = head.index("source")
        assert all(row[col] in SOURCES for row in t[1:]), t
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    sections = html.count("<section>")
    prov = html.count(f"model version (code hash) {code_version()}, commit {commit}")
    assert sections == 4 and prov >= sections + 2                # every section, the header and the full table
    assert time.strftime("%Y-%m-%d", time.gmtime()) in html


def test_markdown_twin_has_the_same_tables(report):
    html = (report / "report.html").read_text()
    md = (report / "report.md").read_text()
    assert _md_tables(md) == _html_tables(html)
    for name in re.findall(r"\]\((img/[^)]+)\)", md):
        assert (report / name).stat().st_size > 1000


def test_report_does_not_overwrite_what_it_did_not_write(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.html").write_text("<html>my own page</html>")
    from llmaccel.cli import main
    import yaml
    from tests.reports._specs import tiny_report_spec
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(tiny_report_spec()))
    assert main(["report", str(spec), "--out", str(out), "--quiet"]) == 2
    assert (out / "report.html").read_text() == "<html>my own page</html>"


def test_gpu_rows_are_modelled_or_measured(report):
    from llmaccel.gpu_baseline.perf_model import estimate_gpu
    tables = _html_tables((report / "report.html").read_text())
    assert len(tables) == 5
    for t in tables[:4]:                                           # one table per metric
        systems = {row[0]: row[1] for row in t[1:]}
        assert systems["a100-sxm-80gb"] in SOURCES and systems["h100-sxm-80gb"] in SOURCES
        assert systems[next(s for s in systems if s.startswith("tiny-u280"))] == "simulated"
    # the modelled figure in the table is the GPU model's own (no measurement of the tiny shape exists)
    e = estimate_gpu("tiny", "h100-sxm-80gb", recipe="fp16", prefill=32, decode=16)
    row = next(r for r in tables[0][1:] if r[0] == "h100-sxm-80gb")
    assert row[1] == "modelled" and float(row[2]) == pytest.approx(e.decode_tokens_per_s, rel=1e-3)
