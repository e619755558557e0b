#!/usr/bin/env python3
"""Mutation testing of the modules that carry llmaccel's contracts (issue 15).

One realistic bug at a time is written into a *copy* of the repository (never the working
tree), the tests that cover that module run against the copy, and the mutant counts as caught
when they fail. The result is one JSON document: applied, caught, missed, and every survivor
with file:line and the mutation, so each can be argued equivalent or killed by a new test
(docs/testing.md keeps that list).

Why hand-rolled rather than mutmut/cosmic-ray: those rewrite the package in place or need
their own runner layout, neither covers C++ headers or Verilog, and neither knows which of our
test files cover which module. Here the operators are a short curated list (section
"operators") and the module -> tests map is one table (MODULES).

Why a fork server: under the shared machine's load ``import torch, transformers`` costs
20-70 s of wall time, longer than most mutants' tests. The parent imports those third-party
packages once (never our own packages) and forks one child per mutant; the child runs
``pytest.main`` in the copy, so our modules are imported fresh, with the mutation, each time.
Bytecode caching is off in the copy (PYTHONDONTWRITEBYTECODE) so a mutant and its restore,
written within the same second with the same size, cannot be served a stale .pyc.

Selection is seeded: ``--seed`` and the same tree give the same mutants in the same order.

    python3 scripts/mutate.py --max-mutants 160 --seed 0 --json out/mutation.json
    python3 scripts/mutate.py --modules isa,prune --max-mutants 20
    python3 scripts/mutate.py --list            # the mutants that would run, no tests
"""
from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
PINNED = Path(__file__).with_name("mutants_pinned.json")

# module name -> source globs (repository-relative; a module split into a package keeps its mutants:
# the globs name the old file and the package), the test files or node ids that state its contract
# (pytest options such as "-k EXPR" may follow), and its share of the mutant budget. Selections are kept
# small: the files whose assertions name the module's contract, not every file that imports it.
# A source glob that matches nothing, or a test file that no longer exists, is reported in the JSON
# ("unmatched_sources", "missing_tests"), never silently dropped; a module with no sources or no tests
# left is reported under "modules_not_applied".
MODULES: dict[str, dict] = {
    "packed_format": dict(src=["sparse_dsp/packed_format.py", "sparse_dsp/packed_format/*.py"],
                          tests=["tests/sparse_dsp/test_packed_format.py",
                                 "tests/mutation_oracles/test_packed_format_oracle.py"], weight=10),
    "quantize": dict(src=["mapping/quantize.py", "mapping/quantize/*.py"],
                     tests=["tests/mapping/test_quantize_prune.py",
                            "tests/mutation_oracles/test_gptq_oracle.py",
                            "tests/mutation_oracles/test_gptq_edges_oracle.py"], weight=12),
    "prune": dict(src=["mapping/prune.py", "mapping/prune/*.py"],
                  tests=["tests/mapping/test_quantize_prune.py",
                         "tests/mutation_oracles/test_wanda_oracle.py"], weight=5),
    "mixed_precision": dict(src=["mapping/mixed_precision.py"],
                            tests=["tests/mapping/test_quantize_prune.py",
                                   "tests/mutation_oracles/test_wanda_oracle.py",
                                   "tests/mutation_oracles/test_allocator_budget_oracle.py"], weight=6),
    "isa": dict(src=["simulator/isa.py", "simulator/isa/*.py"],
                tests=["tests/mutation_oracles/test_isa_golden_words.py", "tests/simulator/test_isa.py",
                       "tests/mutation_oracles/test_isa_decode_range_oracle.py"], weight=14),
    "sampling": dict(src=["host/sampling.py"],
                     tests=["tests/mutation_oracles/test_sampling_oracle.py",
                            "tests/mutation_oracles/test_sampling_edge_oracle.py",
                            "tests/mutation_oracles/test_tiling_and_io_oracle.py",
                            "tests/host/test_host_session.py::test_sample_token_follows_the_documented_algorithm"],
                     weight=5),
    "artifact_io": dict(src=["mapping/artifact_io.py", "sparse_dsp/safe_paths.py"],
                        tests=["tests/mapping/test_artifact_integrity.py", "tests/mapping/test_output_safety.py",
                               "tests/mutation_oracles/test_tiling_and_io_oracle.py",
                               "tests/mutation_oracles/test_safe_paths_oracle.py",
                               "tests/mutation_oracles/test_atomic_writer_oracle.py"],
                        weight=8,
                        tests_by_src={"sparse_dsp/safe_paths.py": [
                            "tests/mutation_oracles/test_safe_paths_oracle.py",
                            "tests/mutation_oracles/test_atomic_writer_oracle.py",
                            "tests/mutation_oracles/test_tiling_and_io_oracle.py", "tests/mapping/test_output_safety.py"]}),
    "compiler": dict(src=["mapping/compiler.py", "mapping/compiler_*.py", "mapping/compiler/*.py",
                          "mapping/placement.py", "mapping/tiling.py"],
                     tests=["tests/mapping/test_compiler_mapping.py",
                            "tests/mutation_oracles/test_tiling_and_io_oracle.py",
                            "tests/mutation_oracles/test_compiler_path_oracle.py",
                            # the programs executed: a misplaced tile or row changes the logits
                            "tests/simulator/test_functional_engine.py::test_prefill_logits_match_the_reference",
                            "tests/simulator/test_functional_engine.py::test_many_weight_and_kv_tiles_give_the_same_tokens",
                            # a biased family (bias LDs broadcast one row) against the torch reference
                            "tests/simulator/test_family_dataflow.py::test_family_runs_through_compress_compile_simulate_run[gpt2]"],
                     weight=12),
    "functional": dict(src=["simulator/functional.py", "simulator/functional_*.py", "simulator/functional/*.py"],
                       tests=["tests/simulator/test_functional_engine.py",
                              "tests/mutation_oracles/test_functional_path_oracle.py", "-k",
                              "weighted_value_sum or prefill_logits or unchanged_program or dropped or misaddressed"
                              " or functional_path_oracle or outside_every_placed or programs_it_launched"],
                       weight=8),
    "hls": dict(src=["hls_kernels/include/llmaccel_hls/kernels/sfu.hpp",
                     "hls_kernels/include/llmaccel_hls/kernels/weight_decoder.hpp",
                     "hls_kernels/include/llmaccel_hls/primitives/dsp_pair_mac.hpp",
                     "hls_kernels/include/llmaccel_hls/kernels/quantize.hpp"],
                tests=["tests/hls/test_hls_header_guards_oracle.py", "tests/hls/test_hls_sfu.py",
                       "tests/hls/test_hls_linear.py"], weight=8, compiles=True,
                # any header edit rebuilds every C-sim library a test loads (the build key hashes the whole
                # include tree), so each header runs only the tests of the kernels that include it
                tests_by_src={"*/sfu.hpp": ["tests/hls/test_hls_header_guards_oracle.py", "tests/hls/test_hls_sfu.py"],
                              "*/quantize.hpp": ["tests/hls/test_hls_header_guards_oracle.py",
                                                 "tests/hls/test_hls_sfu.py"],
                              "*/weight_decoder.hpp": ["tests/hls/test_hls_linear.py"],
                              "*/dsp_pair_mac.hpp": ["tests/hls/test_hls_header_guards_oracle.py",
                                                     "tests/hls/test_hls_linear.py"]}),
    # the HLS top that executes ISA words (issue 14 item 4); reported not applied until it lands
    "hls_isa": dict(src=["hls_kernels/include/llmaccel_hls/isa/*.hpp", "hls_kernels/include/llmaccel_hls/isa/**/*.hpp",
                         "hls_kernels/tops/isa_top.cpp"],
                    tests=["tests/hls/test_isa_top*.py"], weight=4, compiles=True),
    "rtl_wdec": dict(src=["sparse_dsp/rtl/hdl/sdsp_wdec.v"],
                     tests=["tests/rtl/test_rtl_pad_oracle.py"], weight=4),
    "rtl_chain": dict(src=["sparse_dsp/rtl/hdl/sdsp_chain.v", "sparse_dsp/rtl/hdl/sdsp_slice.v"],
                      tests=["tests/rtl/test_rtl_cocotb.py", "-k", "test_chain_rtl_matches_model and (8-2-4 or 12-4-8)"],
                      weight=4),
    "session": dict(src=["host/session.py"],
                    tests=["tests/host/test_session_length_oracle.py", "tests/host/test_host_session.py",
                           "tests/host/test_session_tokenizer_oracle.py"], weight=4),
    "golden": dict(src=["simulator/golden/linear.py", "simulator/golden/sfu.py",
                        "simulator/golden/attention.py", "simulator/golden/decoder_layer.py"],
                   tests=["tests/gpu_baseline/test_reference.py",
                          "tests/mutation_oracles/test_golden_oracle.py",
                          # the HLS C-sim is an independent implementation of the same units and layer
                          "tests/hls/test_hls_sfu.py", "tests/hls/test_hls_layer_eps_oracle.py"], weight=14,
                   compiles=True),
    "timing": dict(src=["simulator/timing.py", "simulator/timing_engine.py", "simulator/timing_costs.py",
                        "simulator/timing/*.py", "simulator/power.py", "simulator/memory_system.py"],
                   tests=["tests/simulator/test_timing_engine.py", "tests/simulator/test_timing_physics.py",
                          "tests/simulator/test_power.py", "tests/simulator/test_memory_system.py",
                          "tests/mutation_oracles/test_energy_oracle.py",
                          "tests/mutation_oracles/test_burst_efficiency_oracle.py",
                          "tests/mutation_oracles/test_memory_system_oracle.py",
                          "tests/mutation_oracles/test_timing_token_oracle.py",
                          "tests/mutation_oracles/test_memory_small_access_oracle.py",
                          "tests/mutation_oracles/test_timing_path_oracle.py"], weight=14),
}
# Sources mutated as text with C++ / Verilog operators; every other source is Python.
# compiles=True: the tests build C++ (g++ C-sim). The baseline reuses the compiled libraries, a mutant of a
# header cannot, so its timeout is at least COMPILE_TIMEOUT_S, not 2.5x the (cached) baseline.
COMPILE_TIMEOUT_S = 400.0


def module_sources(module: str) -> tuple[list[str], list[str]]:
    """(files, globs that matched nothing) of a module, files sorted and deduplicated."""
    files, unmatched = [], []
    for g in MODULES[module]["src"]:
        hits = sorted(str(p.relative_to(REPO)) for p in REPO.glob(g) if p.is_file())
        if not hits and not any(c in g for c in "*?["):
            unmatched.append(g)     # a named file is gone (a glob for a layout yet to come may match nothing)
        files += [h for h in hits if h not in files]
    return files, unmatched


def module_tests(module: str, root: Path = REPO, src: Optional[str] = None) -> tuple[list[str], list[str]]:
    """(pytest arguments, test paths that no longer exist). A glob is expanded; a node id counts as missing
    when its file is missing; options (``-k EXPR``) are kept as written. With ``src``: the narrower selection
    ``tests_by_src`` names for that source file, where it names one."""
    spec = MODULES[module]["tests"]
    if src is not None:
        spec = next((t for g, t in MODULES[module].get("tests_by_src", {}).items() if fnmatch.fnmatch(src, g)), spec)
    args, missing, it = [], [], iter(spec)
    for t in it:
        if t.startswith("-"):
            args += [t, next(it)]
            continue
        path = t.split("::")[0]
        if any(c in path for c in "*?["):
            hits = sorted(str(p.relative_to(root)) for p in root.glob(path))
            args += hits
            missing += [] if hits else [t]
        elif (root / path).exists():
            args.append(t)
        else:
            missing.append(t)
    return args, missing


@dataclasses.dataclass(frozen=True)
class Mutant:
    module: str
    path: str          # repository-relative
    line: int          # for people; never used to find a mutant again (code moves)
    op: str            # operator name
    before: str        # the original source text replaced
    after: str         # its replacement
    start: int         # character offsets into the file's text
    end: int
    context: str = ""  # the stripped source line(s) the mutant sits on
    occurrence: int = 0  # index among mutants of this file with the same (op, before, after, context)

    @property
    def mutation(self) -> str:
        return f"{self.before.strip()} -> {self.after.strip()}"

    def key(self, with_path: bool = True) -> str:
        """Identity that survives code moving: the text, not the line number."""
        return "|".join([self.path if with_path else self.module, self.op, self.mutation, self.context,
                         str(self.occurrence)])

    def describe(self) -> str:
        return f"{self.path}:{self.line} [{self.op}] {self.mutation}"


def key_of(entry: dict, with_path: bool = True) -> str:
    """The key of a mutant recorded in a JSON result or in the pinned list."""
    return "|".join([entry["file"] if with_path else entry["module"], entry["op"], entry["mutation"],
                     entry.get("context", ""), str(entry.get("occurrence", 0))])


# ---------------------------------------------------------------------------------------------
# operators: Python (AST)
# ---------------------------------------------------------------------------------------------
BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
              ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
              ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr,
              ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr}
CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
CALL_SWAP = {"round": "floor", "rint": "floor", "floor": "ceil", "ceil": "floor", "amax": "amin",
             "amin": "amax", "max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
             "sqrt": "rsqrt", "rsqrt": "sqrt", "float32": "float64", "exp": "exp2"}
CALL_DROP = {"abs", "round", "rint", "sqrt"}   # f(x) -> x


def _offsets(text: str) -> list[int]:
    out, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        out.append(pos)
    return out


class _Skip(ast.NodeVisitor):
    """Collect the node ids that mutations must not touch: docstrings, raise/assert/log arguments,
    annotations and error messages (mutating them is noise, not a bug a test should catch)."""

    def __init__(self):
        self.skip: set[int] = set()

    def _all(self, node):
        for n in ast.walk(node):
            self.skip.add(id(n))

    def visit_Raise(self, node):
        self._all(node)

    def visit_Assert(self, node):
        self._all(node)

    def visit_JoinedStr(self, node):
        self._all(node)

    def visit_AnnAssign(self, node):
        self._all(node.annotation)
        self.generic_visit(node)

    def visit_arg(self, node):
        if node.annotation is not None:
            self._all(node.annotation)

    def visit_FunctionDef(self, node):
        if node.returns is not None:
            self._all(node.returns)
        for d in node.decorator_list:
            self._all(d)
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name in {"LlmaccelError", "ValueError", "TypeError", "warn", "print", "info", "debug",
                    "warning", "update", "set_description", "set_postfix", "field", "Field"}:
            self._all(node)
        else:
            self.generic_visit(node)


def python_mutants(module: str, rel: str, text: str) -> list[Mutant]:
    tree = ast.parse(text)
    offs = _offsets(text)
    sk = _Skip()
    sk.visit(tree)
    lines = text.splitlines()
    out: list[Mutant] = []

    def span(node) -> tuple[int, int]:
        return offs[node.lineno - 1] + node.col_offset, offs[node.end_lineno - 1] + node.end_col_offset

    def add(node, new_node, op):
        if "no mutate" in lines[node.lineno - 1]:
            return
        a, b = span(node)
        new = ast.unparse(new_node)
        if isinstance(node, ast.expr):
            new = f"({new})"
        out.append(Mutant(module, rel, node.lineno, op, text[a:b], new, a, b))

    # docstrings
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body \
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant):
            sk._all(n.body[0])
    for node in ast.walk(tree):
        if id(node) in sk.skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
            m = copy.deepcopy(node)
            m.op = BINOP_SWAP[type(node.op)]()
            add(node, m, "binop")
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    m = copy.deepcopy(node)
                    m.ops[i] = CMP_SWAP[type(op)]()
                    add(node, m, "compare")
        elif isinstance(node, ast.BoolOp):
            m = copy.deepcopy(node)
            m.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            add(node, m, "boolop")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
            add(node, node.operand, "unary-drop")
        elif isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 1 << 20:
            add(node, ast.Constant(node.value + 1), "const+1")
            if node.value > 1:
                add(node, ast.Constant(node.value - 1), "const-1")
        elif isinstance(node, ast.Constant) and type(node.value) is float and node.value != 0.0:
            add(node, ast.Constant(0.0 if abs(node.value) < 1e-2 else node.value * 1.1), "float-const")
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            add(node, ast.Constant(not node.value), "bool")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name in CALL_SWAP:
                m = copy.deepcopy(node)
                if isinstance(m.func, ast.Attribute):
                    m.func.attr = CALL_SWAP[name]
                else:
                    m.func.id = CALL_SWAP[name]
                add(node, m, "call-swap")
            if name in CALL_DROP:
                if isinstance(f, ast.Attribute) and not node.args and not isinstance(f.value, ast.Name):
                    add(node, f.value, "call-drop")          # x.abs() -> x
                elif len(node.args) == 1 and not node.keywords and not (
                        isinstance(f, ast.Attribute) and name == "round"):
                    add(node, node.args[0], "call-drop")     # abs(x), np.rint(x) -> x
        elif isinstance(node, ast.AugAssign):
            if type(node.op) in BINOP_SWAP:
                m = copy.deepcopy(node)
                m.op = BINOP_SWAP[type(node.op)]()
                add(node, m, "augassign")
            add(node, ast.Pass(), "stmt-drop")
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) \
                and type(node.value.value) is bool:
            add(node, ast.Return(ast.Constant(not node.value.value)), "return-bool")
    return out


# ---------------------------------------------------------------------------------------------
# operators: C++ headers and Verilog (tokens on code lines, comments and directives skipped)
# ---------------------------------------------------------------------------------------------
CXX_OPS = [
    ("arith", re.compile(r"(?<=\s)\+(?=\s)"), "-"),
    ("arith", re.compile(r"(?<=\s)-(?=\s)"), "+"),
    ("arith", re.compile(r"(?<=\s)\*(?=\s)"), "/"),
    ("arith", re.compile(r"(?<=\s)/(?=\s)"), "*"),
    ("shift", re.compile(r">>"), "<<"),
    ("logic", re.compile(r"&&"), "||"),
    ("logic", re.compile(r"\|\|"), "&&"),
    ("compare", re.compile(r"=="), "!="),
    ("compare", re.compile(r"!="), "=="),
    ("bitop", re.compile(r"(?<=\s)&(?=\s)"), "|"),
    ("bitop", re.compile(r"(?<=\s)\^(?=\s)"), "|"),
]
# relational operators only inside a loop or if condition (elsewhere '<' opens a template)
CXX_COND = re.compile(r"\b(for|if|while)\s*\((.*)\)")
REL = [(re.compile(r"(?<=\s)<(?=\s)"), "<="), (re.compile(r"(?<=\s)<=(?=\s)"), "<"),
       (re.compile(r"(?<=\s)>(?=\s)"), ">="), (re.compile(r"(?<=\s)>=(?=\s)"), ">")]
INT_IN_COND = re.compile(r"(?<![\w.])(\d+)(?![\w.'])")

V_OPS = [
    ("arith", re.compile(r"(?<=\s)\+(?=\s)"), "-"),
    ("arith", re.compile(r"(?<=\s)-(?=\s)"), "+"),
    ("compare", re.compile(r"=="), "!="),
    ("compare", re.compile(r"!="), "=="),
    ("logic", re.compile(r"&&"), "||"),
    ("logic", re.compile(r"\|\|"), "&&"),
    ("bitop", re.compile(r"(?<=\s)&(?=\s)"), "|"),
    ("bitop", re.compile(r"(?<=\s)\^(?=\s)"), "|"),
    ("unary-drop", re.compile(r"~(?=[\w(])"), ""),
    ("shift", re.compile(r">>>"), ">>"),
]
V_COND = re.compile(r"\b(if)\s*\((.*)\)")


def _code_part(line: str, lang: str) -> str:
    cut = line.find("//")
    return line if cut < 0 else line[:cut]


def text_mutants(module: str, rel: str, text: str, lang: str) -> list[Mutant]:
    offs = _offsets(text)
    out: list[Mutant] = []
    in_block = False
    for i, line in enumerate(text.splitlines()):
        s = line.strip()
        if in_block:
            if "*/" in s:
                in_block = False
            continue
        if s.startswith("/*"):
            in_block = "*/" not in s
            continue
        if not s or s.startswith(("#", "`", "//", "*")) or "no mutate" in line:
            continue
        if lang == "v" and re.match(r"(module|input|output|inout|parameter|localparam|wire|reg|integer)\b", s):
            continue
        code = _code_part(line, lang)
        base = offs[i]
        ops = CXX_OPS if lang == "cxx" else V_OPS
        for name, rx, rep in ops:
            for m in rx.finditer(code):
                if name == "arith" and rep == "+" and code[m.start() - 2:m.start()].strip() in {"=", "("}:
                    continue
                out.append(Mutant(module, rel, i + 1, name, m.group(0), rep, base + m.start(), base + m.end()))
        cond = (CXX_COND if lang == "cxx" else V_COND).search(code)
        if cond:
            c0 = cond.start(2)
            body = cond.group(2)
            for rx, rep in REL:
                for m in rx.finditer(body):
                    out.append(Mutant(module, rel, i + 1, "compare", m.group(0), rep,
                                      base + c0 + m.start(), base + c0 + m.end()))
            for m in INT_IN_COND.finditer(body):
                v = int(m.group(1))
                out.append(Mutant(module, rel, i + 1, "const+1", m.group(1), str(v + 1),
                                  base + c0 + m.start(), base + c0 + m.end()))
    return out


def _with_identity(mutants: list[Mutant], text: str) -> list[Mutant]:
    """Attach the text identity: the previous non-blank line and the line(s) the mutant sits on (whitespace
    collapsed), and its occurrence index among equal identities. Lines inserted or removed elsewhere keep
    it; an edit next to the mutant changes it, and the mutant is then reported as not applied."""
    seen: dict[tuple, int] = {}
    out = []
    for m in sorted(mutants, key=lambda m: (m.start, m.end, m.op, m.after)):
        lo = text.rfind("\n", 0, m.start) + 1
        hi = text.find("\n", m.end)
        prev = next((ln for ln in reversed(text[:lo].splitlines()[-8:]) if ln.strip()), "")
        ctx = " ".join(prev.split()) + " \u23ce " + " ".join(text[lo:hi if hi >= 0 else len(text)].split())
        k = (m.op, m.mutation, ctx)
        n = seen.get(k, 0)
        seen[k] = n + 1
        out.append(dataclasses.replace(m, context=ctx, occurrence=n))
    return out


def enumerate_mutants(module: str) -> list[Mutant]:
    out: list[Mutant] = []
    for rel in module_sources(module)[0]:
        text = (REPO / rel).read_text()
        if rel.endswith(".py"):
            found = python_mutants(module, rel, text)
        elif rel.endswith((".hpp", ".h", ".cpp")):
            found = text_mutants(module, rel, text, "cxx")
        elif rel.endswith(".v"):
            found = text_mutants(module, rel, text, "v")
        else:
            continue
        out += _with_identity(found, text)
    return out


def select(modules: list[str], max_mutants: int, seed: int, exclude: frozenset = frozenset()) -> list[Mutant]:
    """Seeded, spread by module weight; within a module a uniform sample of its mutants (``exclude``: keys
    already taken, e.g. by the pinned list). Returned interleaved across modules (round robin), so a run
    cut short by ``--budget-minutes`` still covers every module."""
    rng = random.Random(seed)
    weights = {m: MODULES[m]["weight"] for m in modules}
    total = sum(weights.values()) or 1
    per: dict[str, list[Mutant]] = {}
    for m in modules:
        pool = [mu for mu in enumerate_mutants(m) if mu.key() not in exclude]
        quota = max(1, round(max_mutants * weights[m] / total)) if max_mutants > 0 else 0
        per[m] = rng.sample(pool, min(quota, len(pool)))
    picked: list[Mutant] = []
    while any(per.values()):
        for m in modules:
            if per[m]:
                picked.append(per[m].pop(0))
    return picked[:max_mutants]


def resolve(entries: list[dict], modules: list[str]) -> tuple[list[tuple[Mutant, dict]], list[dict]]:
    """Find recorded mutants (pinned list, an earlier result) in today's sources by their text identity:
    the same file, operator, mutation, source line and occurrence; failing that, the same in any file of
    the module (code moved to another file). Returns (found, not applied)."""
    pool = {m: enumerate_mutants(m) for m in {e["module"] for e in entries} if m in MODULES}
    by_key = {mu.key(): mu for ms in pool.values() for mu in ms}
    by_mod: dict[str, list[Mutant]] = {}
    for ms in pool.values():
        for mu in ms:
            by_mod.setdefault(mu.key(with_path=False), []).append(mu)
    found, missing = [], []
    for e in entries:
        if e["module"] not in modules:
            continue
        mu = by_key.get(key_of(e))
        if mu is None and len(by_mod.get(key_of(e, with_path=False), [])) == 1:
            mu = by_mod[key_of(e, with_path=False)][0]
        if mu is None:
            missing.append({**e, "not_applied": "its source text no longer matches (code changed or removed)"})
        else:
            found.append((mu, e))
    return found, missing


def load_pinned(path: Path = PINNED) -> list[dict]:
    """Mutants every run applies again: the earlier survivors, each either argued equivalent (with the
    reason) or killed by a named test. A pinned equivalent that survives is reported as such, not as a miss."""
    if not path.exists():
        return []
    return json.loads(path.read_text())["mutants"]


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def make_copy(dst: Path) -> Path:
    """The tree (git's tracked and untracked-not-ignored files) copied under ``dst/repo``; ``tests`` is a link
    to the real tests (never mutated), ``dst/shared`` a link to the real shared data."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    root = dst / "repo"
    for f in files:
        if not f:
            continue
        s = REPO / f
        if s.is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, root / f)
    shutil.rmtree(root / "tests", ignore_errors=True)
    (root / "tests").symlink_to(REPO / "tests", target_is_directory=True)   # never mutated
    shared = (REPO.parent / "shared").resolve()
    if shared.exists():
        (dst / "shared").symlink_to(shared)
    return root


def overlay_hls_cache(dst: Path) -> Path:
    """A C-sim library cache for this run: links to the user's compiled libraries (the unmutated builds are
    reused), while every mutant's library is written here and deleted with the run, never into the user's
    cache."""
    from_dir = Path(os.environ.get("LLMACCEL_HLS_CACHE") or Path.home() / ".cache" / "llmaccel" / "hls")
    dst.mkdir(parents=True, exist_ok=True)
    if from_dir.is_dir():
        for f in from_dir.glob("*.so"):
            (dst / f.name).symlink_to(f)
    return dst


def _preload():
    """Import the heavy third-party packages once in the parent (never our own packages)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import hypothesis  # noqa: F401
    import torch  # noqa: F401
    import safetensors.torch  # noqa: F401
    import yaml  # noqa: F401
    try:
        import transformers  # noqa: F401
        from transformers import LlamaConfig, LlamaForCausalLM  # noqa: F401
        from transformers.models.llama import modeling_llama  # noqa: F401
    except ImportError:
        pass
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        pass
    for name in [m for m in sys.modules if m.split(".")[0] in
                 {"sparse_dsp", "simulator", "mapping", "host", "hls_kernels", "gpu_baseline", "reports", "llmaccel"}]:
        raise SystemExit(f"preload imported our own package {name}; mutants would not be seen")


class Child:
    """One mutant's (or one baseline's) pytest, forked from the preloaded parent and run in a copy."""

    def __init__(self, root: Path, tests: list[str], timeout: float):
        self.root, self.log = root, root.parent / "pytest.log"
        self.t0 = time.monotonic()
        self.deadline = self.t0 + timeout
        self.pid = os.fork()
        if self.pid == 0:
            self._child(tests)

    def _child(self, tests: list[str]) -> None:
        try:
            os.setpgid(0, 0)
            fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(self.root)
            sys.path.insert(0, str(self.root))
            os.environ["PYTHONPATH"] = str(self.root) + os.pathsep + os.environ.get("PYTHONPATH", "")
            os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
            sys.dont_write_bytecode = True
            # A failing property test shrinks its example, which costs minutes and tells a mutation run
            # nothing: the run's profile stops at the first failing example (same seeds otherwise).
            from hypothesis import HealthCheck, Phase, settings
            settings.register_profile("mutate", derandomize=True, deadline=None, database=None,
                                      phases=[Phase.explicit, Phase.reuse, Phase.generate],
                                      suppress_health_check=list(HealthCheck))
            os.environ["HYPOTHESIS_PROFILE"] = "mutate"
            import pytest
            rc = pytest.main(["-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:randomly",
                              "--no-header", "-o", "addopts=", *tests])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(rc))
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(3)

    def poll(self) -> Optional[tuple[str, float, str]]:
        """None while running; else (outcome, seconds, tail of output)."""
        done, status = os.waitpid(self.pid, os.WNOHANG)
        if not done:
            if time.monotonic() <= self.deadline:
                return None
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            return "timeout", time.monotonic() - self.t0, ""
        dt = time.monotonic() - self.t0
        rc = os.waitstatus_to_exitcode(status)
        tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
        outcome = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal", 4: "usage",
                   5: "no-tests"}.get(rc, f"rc{rc}")
        return outcome, dt, tail


# Outcomes that say nothing about the mutant: the test selection itself is broken (pytest's usage error,
# nothing collected). Counted as errors, never as caught.
HARNESS_ERRORS = {"usage", "no-tests"}


def _first_failure(tail: str) -> str:
    for line in tail.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            return line[:200]
    return tail.strip().splitlines()[-1][:200] if tail.strip() else ""


def _load_results(path: Path) -> list[dict]:
    """Per-mutant results from a --json document or from its .partial.jsonl companion."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)["results"]


def _summary(results: list[dict], seed: int, wall_s, baseline: dict, extra: Optional[dict] = None) -> dict:
    applied = [r for r in results if r["outcome"] not in HARNESS_ERRORS]
    caught = sum(r["caught"] for r in applied)
    equivalent = [r for r in applied if not r["caught"] and r.get("pinned") == "equivalent"]
    per_module: dict[str, dict] = {}
    for r in applied:
        pm = per_module.setdefault(r["module"], {"applied": 0, "caught": 0, "equivalent": 0})
        pm["applied"] += 1
        pm["caught"] += r["caught"]
        pm["equivalent"] += (not r["caught"] and r.get("pinned") == "equivalent")
    non_eq = len(applied) - len(equivalent)
    secs = sorted(r["seconds"] for r in applied)
    doc = {"seed": seed, "applied": len(applied), "caught": caught, "missed": len(applied) - caught,
           "caught_ratio": round(caught / len(applied), 4) if applied else None,
           "equivalent_survivors": len(equivalent),
           "caught_ratio_of_non_equivalent": round(caught / non_eq, 4) if non_eq else None,
           "timeouts": sum(r["outcome"] == "timeout" for r in applied),
           "harness_errors": [f"{r['file']}:{r['line']} {r['outcome']}" for r in results
                              if r["outcome"] in HARNESS_ERRORS],
           "wall_s": wall_s, "mutant_test_s": round(sum(secs), 1),
           "median_s_per_mutant": secs[len(secs) // 2] if secs else None,
           "baseline": baseline, "per_module": per_module,
           "survivors": [f"{r['file']}:{r['line']} [{r['op']}] {r['mutation']}"
                         + (f"  (argued equivalent: {r['reason']})" if r.get("pinned") == "equivalent" else "")
                         for r in applied if not r["caught"]]}
    sample = [r for r in applied if r.get("in_sample", True)]
    s_caught = sum(r["caught"] for r in sample)
    s_eq = sum(not r["caught"] and r.get("pinned") == "equivalent" for r in sample)
    doc["sample"] = {"applied": len(sample), "caught": s_caught, "equivalent_survivors": s_eq,
                     "caught_ratio_of_non_equivalent": round(s_caught / (len(sample) - s_eq), 4)
                     if len(sample) > s_eq else None}
    doc.update(extra or {})
    return doc


def _interleave(found: list[Mutant], modules: list[str]) -> list[Mutant]:
    per = {m: [mu for mu in found if mu.module == m] for m in modules}
    out: list[Mutant] = []
    while any(per.values()):
        for m in modules:
            if per[m]:
                out.append(per[m].pop(0))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", default=",".join(MODULES), help=f"comma list of {sorted(MODULES)}")
    ap.add_argument("--max-mutants", type=int, default=160, help="fresh seeded mutants, besides the pinned ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own copy of the tree")
    ap.add_argument("--budget-minutes", type=float, default=None,
                    help="start no mutant after this much wall time; those not started are listed as not run")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant's tests (without baselines)")
    ap.add_argument("--json", type=Path, help="also write the JSON result to this file")
    ap.add_argument("--list", action="store_true", help="print the selected mutants and exit")
    ap.add_argument("--only", default=None, help="keep only mutants whose 'file:line [op] mutation' contains this")
    ap.add_argument("--no-pinned", action="store_true", help=f"leave out the pinned mutants ({PINNED.name})")
    ap.add_argument("--rerun", type=Path, help="run again only the survivors listed in this earlier --json result "
                    "(found by their source text, not their line)")
    ap.add_argument("--summarize", type=Path, nargs="+", help="print the summary of earlier .partial.jsonl "
                    "result files (one run interrupted and continued by another) and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of each module's tests")
    args = ap.parse_args(argv)
    mods = [m.strip() for m in args.modules.split(",") if m.strip()]
    bad = [m for m in mods if m not in MODULES]
    if bad:
        print(f"error: --modules: unknown {bad}; allowed: {sorted(MODULES)}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: --jobs={args.jobs}: allowed >= 1", file=sys.stderr)
        return 2
    if args.summarize:
        results = [json.loads(line) for f in args.summarize for line in f.read_text().splitlines() if line.strip()]
        print(json.dumps(_summary(results, args.seed, None, {}), indent=1))
        return 0

    # sources and tests as they are today: what is gone is reported, never silently dropped
    unmatched = {m: module_sources(m)[1] for m in mods}
    missing_tests = {m: module_tests(m)[1] for m in mods}
    not_applied_mods = {}
    for m in mods:
        if not module_sources(m)[0]:
            not_applied_mods[m] = f"no source file matches {MODULES[m]['src']}"
        elif not [t for t in module_tests(m)[0] if t.startswith("tests/")]:
            not_applied_mods[m] = f"none of its tests exists: {MODULES[m]['tests']}"
    live = [m for m in mods if m not in not_applied_mods]

    pinned_meta: dict[str, dict] = {}
    sampled_keys: Optional[set[str]] = None     # None: no seeded sample (--rerun), every mutant counts
    not_applied: list[dict] = []
    if args.rerun:
        prev = [r for r in _load_results(args.rerun) if not r["caught"]]
        found, not_applied = resolve(prev, live)
        mutants = _interleave([mu for mu, _ in found], live)
    else:
        # The seeded sample is drawn from every mutant (pinned ones included, so it stays an unbiased
        # sample); a drawn pinned equivalent is classed by its pin. Pinned `killed` and `open` mutants run
        # besides the sample, to confirm the kill or report the open one; pinned equivalents that were not
        # drawn do not run (no test can tell them apart, and they cost a full selection each).
        sample = select(live, args.max_mutants, args.seed)
        drawn = {mu.key() for mu in sample}
        extra: list[Mutant] = []
        if not args.no_pinned:
            found, not_applied = resolve(load_pinned(), live)
            for mu, e in found:
                pinned_meta[mu.key()] = e
                if e["status"] != "equivalent" and mu.key() not in drawn:
                    extra.append(mu)
        sampled_keys = drawn
        mutants = _interleave(extra + sample, live)
    if args.only:
        mutants = [mu for mu in mutants if args.only in mu.describe()]
    if args.list:
        for m in mutants:
            tag = "" if sampled_keys is None or m.key() in sampled_keys else "pinned-extra "
            pin = pinned_meta.get(m.key())
            print(tag + m.describe() + (f"  [pinned {pin['status']}]" if pin else ""))
        for e in not_applied:
            print(f"NOT APPLIED {e['file']}:{e.get('line', '?')} [{e['op']}] {e['mutation']}: {e['not_applied']}")
        for m, why in not_applied_mods.items():
            print(f"NOT APPLIED module {m}: {why}")
        print(f"{len(mutants)} mutants ({len(pinned_meta)} pinned), {len(not_applied)} not applied", file=sys.stderr)
        return 0

    _preload()
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety
        tqdm = None
    results, baseline, not_run = [], {}, []
    t_start = time.monotonic()
    part = args.json.with_suffix(".partial.jsonl") if args.json else None
    if part is not None and part.exists():
        part.unlink()       # ours: the partial results of an earlier run to the same --json
    with tempfile.TemporaryDirectory(prefix="llmaccel-mutate-") as tmp:
        os.environ["LLMACCEL_HLS_CACHE"] = str(overlay_hls_cache(Path(tmp) / "hls-cache"))
        roots = [make_copy(Path(tmp) / f"slot{j}") for j in range(args.jobs)]
        tests_of = {m: module_tests(m, roots[0])[0] for m in live}
        timeout_of = {m: args.timeout for m in live}
        free = list(roots)

        # baselines: the unmutated tests of each module, run side by side like the mutants
        if not args.no_baseline:
            queue, running = [m for m in live if any(mu.module == m for mu in mutants)], {}
            while queue or running:
                while free and queue:
                    m = queue.pop(0)
                    running[m] = Child(free.pop(), tests_of[m], args.timeout * 2)
                for m, ch in list(running.items()):
                    res = ch.poll()
                    if res is None:
                        continue
                    outcome, dt, tail = res
                    free.append(ch.root)
                    del running[m]
                    baseline[m] = {"outcome": outcome, "seconds": round(dt, 1)}
                    # a mutant that runs 2.5x longer than the clean tests (plus start-up slack) is an
                    # endless loop, counted as caught ("timeout"); never less than the clean run needs
                    timeout_of[m] = max(30.0, 2.5 * dt + 20.0,
                                        COMPILE_TIMEOUT_S if MODULES[m].get("compiles") else 0.0)
                    print(f"baseline {m}: {outcome} in {dt:.0f}s", file=sys.stderr)
                    if outcome != "passed":
                        print(tail, file=sys.stderr)
                time.sleep(0.05)
        todo = [mu for mu in mutants if args.no_baseline or baseline.get(mu.module, {}).get("outcome") == "passed"]
        skipped_mods = sorted({mu.module for mu in mutants} - {mu.module for mu in todo})
        for m in skipped_mods:
            not_applied_mods[m] = f"its tests fail without a mutant ({baseline[m]['outcome']})"
        bar = tqdm(total=len(todo), desc="mutants", file=sys.stderr) if tqdm else None
        budget_s = None if args.budget_minutes is None else args.budget_minutes * 60.0
        running: dict[int, tuple[Mutant, Child, bytes, str]] = {}
        while todo or running:
            while free and todo:
                mu = todo[0]
                seen = [r["seconds"] for r in results if r["module"] == mu.module]
                est = (sum(seen) / len(seen) if seen else
                       60.0 if MODULES[mu.module].get("compiles") else baseline.get(mu.module, {}).get("seconds", 10.0))
                if budget_s is not None and time.monotonic() - t_start + est > budget_s:
                    not_run += [m.describe() for m in todo]
                    todo = []
                    break
                todo.pop(0)
                root = free.pop()
                target = root / mu.path
                original = target.read_bytes()
                text = original.decode()
                if text[mu.start:mu.end] != mu.before:
                    raise SystemExit(f"copy of {mu.path} differs from the tree: {mu.describe()}")
                target.write_text(text[:mu.start] + mu.after + text[mu.end:])
                if (mu.module, mu.path) not in tests_of:
                    tests_of[(mu.module, mu.path)] = module_tests(mu.module, root, mu.path)[0]
                ch = Child(root, tests_of[(mu.module, mu.path)], timeout_of[mu.module])
                running[ch.pid] = (mu, ch, original, hashlib.sha256(original).hexdigest())
            for pid, (mu, ch, original, digest) in list(running.items()):
                res = ch.poll()
                if res is None:
                    continue
                del running[pid]
                target = ch.root / mu.path
                target.write_bytes(original)
                if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                    raise SystemExit(f"restore of {mu.path} failed")
                free.append(ch.root)
                outcome, dt, tail = res
                caught = outcome not in HARNESS_ERRORS and outcome != "passed"
                pin = pinned_meta.get(mu.key(), {})
                results.append({"module": mu.module, "file": mu.path, "line": mu.line, "op": mu.op,
                                "mutation": mu.mutation, "context": mu.context, "occurrence": mu.occurrence,
                                "outcome": outcome, "caught": caught, "seconds": round(dt, 1),
                                "killed_by": _first_failure(tail) if caught and outcome != "timeout" else outcome,
                                "in_sample": sampled_keys is None or mu.key() in sampled_keys,
                                **({"pinned": pin["status"], "reason": pin.get("reason", "")} if pin else {})})
                if part is not None:   # results so far, so that an interrupted run still leaves its data
                    with open(part, "a") as fh:
                        fh.write(json.dumps(results[-1]) + "\n")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(caught=sum(r["caught"] for r in results),
                                    missed=sum(not r["caught"] for r in results))
            time.sleep(0.05)
        if bar is not None:
            bar.close()
    extra = {"jobs": args.jobs, "budget_minutes": args.budget_minutes,
             "pinned_applied": sum(r.get("pinned") is not None for r in results),
             "not_applied": [f"{e['file']}:{e.get('line', '?')} [{e['op']}] {e['mutation']}: {e['not_applied']}"
                             for e in not_applied],
             "modules_not_applied": not_applied_mods,
             "unmatched_sources": {m: g for m, g in unmatched.items() if g},
             "missing_tests": {m: t for m, t in missing_tests.items() if t},
             "not_run_budget": not_run}
    doc = _summary(results, args.seed, round(time.monotonic() - t_start, 1), baseline, extra)
    doc["results"] = results
    text = json.dumps(doc, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmpf = args.json.with_suffix(args.json.suffix + ".tmp")
        tmpf.write_text(text)
        tmpf.replace(args.json)
    print(json.dumps({k: v for k, v in doc.items() if k not in ("results", "baseline")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
