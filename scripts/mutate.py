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

REPO = Path(__file__).resolve().parents[1]

# module name -> (source globs, test node ids, share of the mutant budget).
# Test selections are kept small: they are the files whose assertions name the module's
# contract, not every file that happens to import it.
MODULES: dict[str, dict] = {
    "packed_format": dict(src=["sparse_dsp/packed_format.py"],
                          tests=["tests/sparse_dsp/test_packed_format.py",
                                 "tests/mutation_oracles/test_packed_format_oracle.py"], weight=10),
    "quantize": dict(src=["mapping/quantize.py"],
                     tests=["tests/mapping/test_quantize_prune.py",
                            "tests/mutation_oracles/test_gptq_oracle.py"], weight=12),
    "prune": dict(src=["mapping/prune.py"],
                  tests=["tests/mapping/test_quantize_prune.py",
                         "tests/mutation_oracles/test_wanda_oracle.py"], weight=5),
    "mixed_precision": dict(src=["mapping/mixed_precision.py"],
                            tests=["tests/mapping/test_quantize_prune.py",
                                   "tests/mutation_oracles/test_wanda_oracle.py"], weight=6),
    "isa": dict(src=["simulator/isa.py"],
                tests=["tests/mutation_oracles/test_isa_golden_words.py", "tests/simulator/test_isa.py"], weight=14),
    "sampling": dict(src=["host/sampling.py"],
                     tests=["tests/mutation_oracles/test_sampling_oracle.py",
                            "tests/mutation_oracles/test_tiling_and_io_oracle.py",
                            "tests/host/test_host_session.py::test_sample_token_follows_the_documented_algorithm"],
                     weight=5),
    "artifact_io": dict(src=["mapping/artifact_io.py", "sparse_dsp/safe_paths.py"],
                        tests=["tests/mapping/test_artifact_integrity.py", "tests/mapping/test_output_safety.py",
                               "tests/mutation_oracles/test_tiling_and_io_oracle.py"],
                        weight=8),
    "compiler": dict(src=["mapping/compiler.py", "mapping/placement.py", "mapping/tiling.py"],
                     tests=["tests/mapping/test_compiler_mapping.py",
                            "tests/mutation_oracles/test_tiling_and_io_oracle.py",
                            # the programs executed: a misplaced tile or row changes the logits
                            "tests/simulator/test_functional_engine.py::test_prefill_logits_match_the_reference",
                            "tests/simulator/test_functional_engine.py::test_many_weight_and_kv_tiles_give_the_same_tokens"],
                     weight=12),
    "functional": dict(src=["simulator/functional.py"],
                       tests=["tests/simulator/test_functional_engine.py", "-k",
                              "weighted_value_sum or prefill_logits or unchanged_program or dropped or misaddressed"],
                       weight=8),
    "hls": dict(src=["hls_kernels/include/llmaccel_hls/kernels/sfu.hpp",
                     "hls_kernels/include/llmaccel_hls/kernels/weight_decoder.hpp",
                     "hls_kernels/include/llmaccel_hls/primitives/dsp_pair_mac.hpp",
                     "hls_kernels/include/llmaccel_hls/kernels/quantize.hpp"],
                tests=["tests/hls/test_hls_sfu.py", "tests/hls/test_hls_linear.py"], weight=8),
    "rtl_wdec": dict(src=["sparse_dsp/rtl/hdl/sdsp_wdec.v"],
                     tests=["tests/rtl/test_rtl_pad_oracle.py"], weight=4),
    "rtl_chain": dict(src=["sparse_dsp/rtl/hdl/sdsp_chain.v", "sparse_dsp/rtl/hdl/sdsp_slice.v"],
                      tests=["tests/rtl/test_rtl_cocotb.py", "-k", "test_chain_rtl_matches_model and (8-2-4 or 12-4-8)"],
                      weight=4),
    "session": dict(src=["host/session.py"],
                    tests=["tests/host/test_session_length_oracle.py", "tests/host/test_host_session.py"], weight=4),
    "golden": dict(src=["simulator/golden/linear.py", "simulator/golden/sfu.py",
                        "simulator/golden/attention.py", "simulator/golden/decoder_layer.py"],
                   tests=["tests/gpu_baseline/test_reference.py",
                          "tests/mutation_oracles/test_golden_oracle.py",
                          # the HLS C-sim is an independent implementation of the same units and layer
                          "tests/hls/test_hls_sfu.py", "tests/hls/test_hls_layer_eps_oracle.py"], weight=14),
    "timing": dict(src=["simulator/timing.py", "simulator/timing_engine.py", "simulator/timing_costs.py",
                        "simulator/power.py", "simulator/memory_system.py"],
                   tests=["tests/simulator/test_timing_engine.py", "tests/simulator/test_timing_physics.py",
                          "tests/simulator/test_power.py", "tests/simulator/test_memory_system.py",
                          "tests/mutation_oracles/test_energy_oracle.py",
                          "tests/mutation_oracles/test_burst_efficiency_oracle.py"], weight=14),
}
# Sources mutated as text with C++ / Verilog operators; every other source is Python.


@dataclasses.dataclass(frozen=True)
class Mutant:
    module: str
    path: str          # repository-relative
    line: int
    op: str            # operator name
    before: str        # the original source text replaced
    after: str         # its replacement
    start: int         # character offsets into the file's text
    end: int

    def describe(self) -> str:
        return f"{self.path}:{self.line} [{self.op}] {self.before.strip()!s} -> {self.after.strip()!s}"


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


def enumerate_mutants(module: str) -> list[Mutant]:
    out: list[Mutant] = []
    for rel in MODULES[module]["src"]:
        text = (REPO / rel).read_text()
        if rel.endswith(".py"):
            out += python_mutants(module, rel, text)
        elif rel.endswith((".hpp", ".h", ".cpp")):
            out += text_mutants(module, rel, text, "cxx")
        elif rel.endswith(".v"):
            out += text_mutants(module, rel, text, "v")
    return out


def select(modules: list[str], max_mutants: int, seed: int) -> list[Mutant]:
    """Seeded, spread by module weight; within a module a uniform sample of its mutants."""
    rng = random.Random(seed)
    weights = {m: MODULES[m]["weight"] for m in modules}
    total = sum(weights.values())
    picked: list[Mutant] = []
    for m in modules:
        pool = enumerate_mutants(m)
        quota = max(1, round(max_mutants * weights[m] / total))
        picked += rng.sample(pool, min(quota, len(pool)))
    return picked[:max_mutants] if len(picked) > max_mutants else picked


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------
def make_copy(dst: Path) -> Path:
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
    shutil.rmtree(root / "tests")
    (root / "tests").symlink_to(REPO / "tests", target_is_directory=True)   # never mutated
    shared = (REPO.parent / "shared").resolve()
    if shared.exists():
        (dst / "shared").symlink_to(shared)
    return root


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


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """Fork, run pytest in the copy, return (outcome, seconds, tail of output)."""
    log = root.parent / "pytest.log"
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(root)
            sys.path.insert(0, str(root))
            os.environ["PYTHONPATH"] = str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")
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
    deadline = t0 + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - t0, ""
        time.sleep(0.05)
    dt = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    outcome = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal", 4: "usage", 5: "no-tests"}.get(rc, f"rc{rc}")
    return outcome, dt, tail


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


def _summary(results: list[dict], seed: int, wall_s, baseline: dict) -> dict:
    caught = sum(r["caught"] for r in results)
    per_module: dict[str, dict] = {}
    for r in results:
        pm = per_module.setdefault(r["module"], {"applied": 0, "caught": 0})
        pm["applied"] += 1
        pm["caught"] += r["caught"]
    return {"seed": seed, "applied": len(results), "caught": caught, "missed": len(results) - caught,
            "caught_ratio": round(caught / len(results), 4) if results else None,
            "timeouts": sum(r["outcome"] == "timeout" for r in results),
            "wall_s": wall_s, "mutant_test_s": round(sum(r["seconds"] for r in results), 1),
            "baseline": baseline, "per_module": per_module,
            "survivors": [f"{r['file']}:{r['line']} [{r['op']}] {r['mutation']}" for r in results if not r["caught"]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", default=",".join(MODULES), help=f"comma list of {sorted(MODULES)}")
    ap.add_argument("--max-mutants", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant's tests")
    ap.add_argument("--json", type=Path, help="also write the JSON result to this file")
    ap.add_argument("--list", action="store_true", help="print the selected mutants and exit")
    ap.add_argument("--rerun", type=Path, help="run again only the survivors listed in this earlier --json result")
    ap.add_argument("--summarize", type=Path, nargs="+", help="print the summary of earlier .partial.jsonl "
                    "result files (one run interrupted and continued by another) and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of each module's tests")
    args = ap.parse_args(argv)
    mods = [m.strip() for m in args.modules.split(",") if m.strip()]
    bad = [m for m in mods if m not in MODULES]
    if bad:
        print(f"error: --modules: unknown {bad}; allowed: {sorted(MODULES)}", file=sys.stderr)
        return 2
    if args.summarize:
        results = [json.loads(line) for f in args.summarize for line in f.read_text().splitlines() if line.strip()]
        print(json.dumps(_summary(results, args.seed, None, {}), indent=1))
        return 0
    if args.rerun:
        prev = _load_results(args.rerun)
        want = {(r["file"], r["line"], r["op"], r["mutation"]) for r in prev if not r["caught"]}
        mods = sorted({r["module"] for r in prev if not r["caught"]}, key=list(MODULES).index)
        mutants = [mu for m in mods for mu in enumerate_mutants(m)
                   if (mu.path, mu.line, mu.op, f"{mu.before.strip()} -> {mu.after.strip()}") in want]
    else:
        mutants = select(mods, args.max_mutants, args.seed)
    if args.list:
        for m in mutants:
            print(m.describe())
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0
    _preload()
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety
        tqdm = None
    results, baseline = [], {}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmaccel-mutate-") as tmp:
        root = make_copy(Path(tmp))
        # test files that exist (a new oracle may not yet), and the options (-k EXPR) as written
        tests_of = {m: [t for t in MODULES[m]["tests"] if not t.startswith("tests/") or (root / t).exists()]
                    for m in mods}
        timeout_of = {m: args.timeout for m in mods}
        if not args.no_baseline:
            for m in mods:
                tests_of[m] = [t for t in MODULES[m]["tests"] if not t.startswith("tests/") or (root / t).exists()]
                outcome, dt, tail = run_tests(root, tests_of[m], args.timeout * 2)
                baseline[m] = {"outcome": outcome, "seconds": round(dt, 1)}
                # a mutant that runs 2.5x longer than the clean tests (plus start-up slack) is an
                # endless loop, counted as caught ("timeout"); never less than the clean run needs
                timeout_of[m] = max(30.0, 2.5 * dt + 20.0)
                print(f"baseline {m}: {outcome} in {dt:.0f}s", file=sys.stderr)
                if outcome != "passed":
                    print(tail, file=sys.stderr)
        todo = [mu for mu in mutants if args.no_baseline or baseline[mu.module]["outcome"] == "passed"]
        bar = tqdm(todo, desc="mutants", file=sys.stderr) if tqdm else todo
        for mu in bar:
            target = root / mu.path
            original = target.read_bytes()
            digest = hashlib.sha256(original).hexdigest()
            text = original.decode()
            assert text[mu.start:mu.end] == mu.before, mu.describe()
            try:
                target.write_text(text[:mu.start] + mu.after + text[mu.end:])
                outcome, dt, tail = run_tests(root, tests_of[mu.module], timeout_of[mu.module])
            finally:
                target.write_bytes(original)
                if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                    raise SystemExit(f"restore of {mu.path} failed")
            caught = outcome != "passed"
            results.append({"module": mu.module, "file": mu.path, "line": mu.line, "op": mu.op,
                            "mutation": f"{mu.before.strip()} -> {mu.after.strip()}", "outcome": outcome,
                            "caught": caught, "seconds": round(dt, 1),
                            "killed_by": _first_failure(tail) if caught and outcome != "timeout" else outcome})
            if args.json:   # results so far, so that an interrupted run still leaves its data
                with open(args.json.with_suffix(".partial.jsonl"), "a") as fh:
                    fh.write(json.dumps(results[-1]) + "\n")
            if tqdm:
                bar.set_postfix(caught=sum(r["caught"] for r in results), missed=sum(not r["caught"] for r in results))
    doc = _summary(results, args.seed, round(time.monotonic() - t_start, 1), baseline)
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
