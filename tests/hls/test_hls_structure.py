"""Static checks of the HLS sources: the structural rules Vitis needs to schedule the kernels at II=1.

These read the C++ (no Vitis here) and enforce, for every top and kernel header:
- every m_axi port has a `depth=` (cosim sizes its buffers by it) and its own bundle;
- no function tests one of its pointer parameters (a null test on an m_axi port does not synthesize);
- no m_axi port (pointer parameter) is read or written inside an unrolled loop (one port, many
  accesses per cycle: no burst, II > 1);
- the linear layers are canonical DATAFLOW regions: after the pragma, only stream declarations
  and calls to stage functions, no struct copies or arithmetic;
- every pipelined or unrolled loop carries a label, so reports and schedules can name it.
Each rule is also run on a deliberately broken source, so a rule that matches nothing fails.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "hls_kernels"
TOPS = sorted((ROOT / "tops").glob("*.cpp"))
HEADERS = sorted((ROOT / "include" / "llmaccel_hls").rglob("*.hpp"))

_M_AXI = re.compile(r"#pragma\s+HLS\s+INTERFACE\s+m_axi\s+(?P<args>.*)")
_FUNC = re.compile(r"^(?:template\s*<[^>]*(?:<[^>]*>[^>]*)*>\s*)?(?:inline\s+)?[\w:<>, ]+?\b(?P<name>\w+)\s*"
                   r"\((?P<params>[^;{)]*(?:\([^)]*\)[^;{)]*)*)\)\s*\{", re.M)


def _strip_comments(text: str) -> str:
    """Comments and C-simulation-only blocks (`#ifndef __SYNTHESIS__` asserts) go: they never synthesize."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"#ifndef\s+__SYNTHESIS__.*?#endif", "", text, flags=re.S)


def _block(text: str, open_at: int) -> str:
    """The text between the brace at ``open_at`` and its matching close brace."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i]
    raise AssertionError("unbalanced braces")


def functions(text: str) -> list[tuple[str, list[str], str]]:
    """(name, pointer parameter names, body) of each function definition."""
    text = _strip_comments(text)
    out = []
    for m in _FUNC.finditer(text):
        if m.group("name") in ("if", "for", "while", "switch"):
            continue
        ptrs = re.findall(r"\*\s*(\w+)\s*(?:,|$)", m.group("params").replace("\n", " ") + ",")
        out.append((m.group("name"), ptrs, _block(text, m.end() - 1)))
    return out


def m_axi_problems(text: str) -> list[str]:
    problems, bundles = [], {}
    for m in _M_AXI.finditer(text):
        args = dict(re.findall(r"(\w+)\s*=\s*(\w+)", m.group("args")))
        port = args.get("port", "?")
        if "depth" not in args:
            problems.append(f"m_axi port {port} has no depth=")
        b = args.get("bundle")
        if b is None:
            problems.append(f"m_axi port {port} has no bundle")
        elif b in bundles:
            problems.append(f"m_axi ports {bundles[b]} and {port} share bundle {b}")
        else:
            bundles[b] = port
    return problems


def pointer_test_problems(text: str) -> list[str]:
    problems = []
    for name, ptrs, body in functions(text):
        for p in ptrs:
            pat = rf"if\s*\(\s*!?\s*{p}\s*\)|\b{p}\s*[=!]=\s*(?:0|NULL|nullptr)\b|\b{p}\s*\?"
            if re.search(pat, body):
                problems.append(f"{name} tests its pointer parameter {p}")
    return problems


def _unrolled_loop_bodies(body: str) -> list[str]:
    out = []
    for m in re.finditer(r"for\s*\([^)]*\)\s*\{", body):
        inner = _block(body, m.end() - 1)
        if re.match(r"\s*#pragma\s+HLS\s+UNROLL", inner):
            out.append(inner)
    return out


def unrolled_m_axi_problems(text: str) -> list[str]:
    problems = []
    for name, ptrs, body in functions(text):
        for inner in _unrolled_loop_bodies(body):
            for p in ptrs:
                if re.search(rf"\b{p}\s*\[|\*\s*{p}\b|\b{p}\s*\+", inner):
                    problems.append(f"{name}: m_axi pointer {p} is accessed inside an unrolled loop")
    return problems


def dataflow_problems(text: str) -> list[str]:
    """After `#pragma HLS DATAFLOW`, each statement must be a call (optionally under a compile-time
    `if (FMT::...)`), a stream declaration or a pragma."""
    problems = []
    for name, _, body in functions(text):
        at = body.find("#pragma HLS DATAFLOW")
        if at < 0:
            continue
        region = body[at + len("#pragma HLS DATAFLOW"):]
        for stmt in filter(None, (s.strip() for s in region.split(";"))):
            stmt = re.sub(r"^if\s*\(\s*!?\s*\w+::\w+\s*\)\s*", "", stmt)
            if stmt.startswith("#pragma") or re.match(r"hls::stream<", stmt):
                continue
            if not re.fullmatch(r"[\w:]+(?:<[^;]*>)?\s*\((?s:.*)\)", stmt):
                problems.append(f"{name}: DATAFLOW region holds a non-call statement: {stmt[:60]!r}")
    return problems


def label_problems(text: str) -> list[str]:
    problems = []
    for m in re.finditer(r"(?P<pre>[^\n]*\n)?\s*for\s*\([^)]*\)\s*\{\s*#pragma\s+HLS\s+(PIPELINE|UNROLL)",
                         _strip_comments(text)):
        if not re.search(r"^\s*[A-Z][A-Z0-9_]*:\s*$", m.group("pre") or ""):
            problems.append(f"an unlabelled {m.group(2)} loop after {m.group('pre')!r}")
    return problems


@pytest.mark.parametrize("top", TOPS, ids=lambda p: p.name)
def test_every_m_axi_port_has_a_depth_and_its_own_bundle(top):
    assert m_axi_problems(top.read_text()) == []


@pytest.mark.parametrize("src", TOPS + HEADERS, ids=lambda p: p.name)
def test_no_function_tests_a_pointer(src):
    assert pointer_test_problems(src.read_text()) == []


@pytest.mark.parametrize("src", TOPS + HEADERS, ids=lambda p: p.name)
def test_no_m_axi_access_inside_an_unrolled_lane(src):
    assert unrolled_m_axi_problems(src.read_text()) == []


@pytest.mark.parametrize("src", TOPS + HEADERS, ids=lambda p: p.name)
def test_dataflow_regions_are_canonical(src):
    assert dataflow_problems(src.read_text()) == []


@pytest.mark.parametrize("src", TOPS + HEADERS, ids=lambda p: p.name)
def test_pipelined_and_unrolled_loops_are_labelled(src):
    assert label_problems(src.read_text()) == []


def test_linear_layers_are_dataflow_regions_with_one_function_per_stage():
    text = (ROOT / "include" / "llmaccel_hls" / "kernels" / "linear.hpp").read_text()
    bodies = {name: body for name, _, body in functions(text)}
    for layer, mac in (("linear_mv", "mv_mac"), ("linear_mm", "mm_mac")):
        body = bodies[layer]
        assert "#pragma HLS DATAFLOW" in body
        for stage in ("read_rows<", "decode_beats<", f"{mac}<", "write_"):
            assert stage in body, f"{layer} has no {stage} stage"


# ---- each rule catches the fault it names --------------------------------------------------

BROKEN_TOP = """
void k(const uint32_t* codes, const uint32_t* indices, int32_t* partial, int n) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_w depth = 4
    if (partial) partial[0] = 1;
LANES:
    for (int l = 0; l < 4; l++) {
#pragma HLS UNROLL
        acc += codes[l];
    }
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        acc += 1;
    }
}
"""

BROKEN_DATAFLOW = """
template <class L>
void region(weight_cursor& cur, const int8_t* x, float* y) {
    weight_cursor cur_up = cur;
#pragma HLS DATAFLOW
    stage_a(cur, x, y);
    cur_up.words += 4;
    stage_b(cur_up, x, y);
}
"""


def test_the_rules_catch_the_faults_they_name():
    assert any("no depth" in p for p in m_axi_problems(BROKEN_TOP))
    assert any("share bundle gmem_w" in p for p in m_axi_problems(BROKEN_TOP))
    assert pointer_test_problems(BROKEN_TOP) == ["k tests its pointer parameter partial"]
    assert unrolled_m_axi_problems(BROKEN_TOP) == ["k: m_axi pointer codes is accessed inside an unrolled loop"]
    assert len(label_problems(BROKEN_TOP)) == 1
    assert any("cur_up.words" in p for p in dataflow_problems(BROKEN_DATAFLOW))
