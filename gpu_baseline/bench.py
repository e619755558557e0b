"""GPU measurements in one run: copy bandwidth, idle power, kernel rows and whole-model runs (Python API).

What is measured, and how (every figure ends up tagged ``measured`` in a
:class:`gpu_baseline.measured.GpuMeasurement`):

* **Copy bandwidth**: a Triton copy kernel and torch's ``copy_`` over a 1 GiB
  buffer, bytes read plus written over the median time; the faster of the two
  is the run's achievable HBM bandwidth (both are in the notes).
* **Kernel rows**: the decode GEMV on a packed layer (W4 g128 by default) at
  the given shapes, INT8 and FP16 activations, each tiling of a small sweep;
  the row reports the fastest. Calls are captured in a CUDA graph and rotate
  over enough copies of the layer to exceed the L2 cache three times, so the
  weights come from HBM. ``bytes_moved`` counts what the kernel must move
  (packed weights, activations in, outputs out).
* **Model runs**: prefill (ms per prompt token) and decode (median ms of one
  CUDA-graph step) of the model preset's shapes (any family: biases, LayerNorm and
  learned positions included) with synthetic packed weights, and of the dense FP16
  transformers baseline (Llama-block families only); the decode step also as a kernel
  row against its bytes (``gpu_baseline.workload``), i.e. its share of the
  roofline at the measured copy bandwidth.
* **Energy**: NVML's total-energy counter over at least one second of
  repeated runs, per run; idle power over a quiet interval.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.measured import (CopyBandwidth, GpuIdentity, GpuMeasurement, IdlePower, KernelBench, ModelRun,
                                   SCHEMA_VERSION, preset_for_gpu_name)
from llmaccel.gpu_baseline.nvml import Nvml, measure_idle_power
from llmaccel.gpu_baseline.triton.launch import compile_options
from llmaccel.gpu_baseline.triton.linear import GemvConfig, choose_split_k, fp16_linear, int8_linear
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat

Say = Callable[[str], None]


class GpuUnavailable(LlmaccelError):
    """No CUDA GPU to measure on."""

ENERGY_MIN_SECONDS = 1.0     # NVML's energy counter advances in steps; integrate over >= 1 s of work


@dataclass
class BenchConfig:
    """What one ``gpu-bench`` run measures."""

    model: str = "llama2-7b"
    recipe: str = "w4-g128-rtn"
    prefill: int = 128
    decode: int = 128
    repeats: int = 5
    activations: tuple[str, ...] = ("int8", "fp16")
    gemv_shapes: tuple[tuple[int, int], ...] = ((4096, 4096), (11008, 4096))
    gemv_bits: int = 4
    gemv_group: int = 128
    gemv_block_o: tuple[int, ...] = (16, 32, 64)
    gemv_groups_per_iter: tuple[int, ...] = (1, 4)
    include_hf: bool = True
    hf_compile: bool = False
    bundled_tokens: int = 32
    energy: bool = True
    device_preset: Optional[str] = None
    copy_bytes: int = 1 << 30
    idle_seconds: float = 3.0
    command: str = ""


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise GpuUnavailable(f"gpu-bench needs a CUDA GPU, but torch.cuda.is_available() is False ({why}; torch "
                                 f"{torch.__version__}); allowed: a machine with an NVIDIA GPU and a CUDA torch "
                                 f"(without one, `llmaccel simulate --device <gpu>` gives modelled figures)")
    return torch.device("cuda", torch.cuda.current_device())


# --------------------------------------------------------------------------- timing

def _median_ms(graph: torch.cuda.CUDAGraph, calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return statistics.median(times)


def time_in_graph(fn: Callable[[int], None], calls: int, repeats: int) -> float:
    """Median ms of one ``fn(i)`` call, ``calls`` of them (i = 0..calls-1) captured in one CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(min(calls, 3)):   # compile and warm up outside the capture
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(calls):
            fn(i)
    g.replay()
    torch.cuda.synchronize()
    return _median_ms(g, calls, repeats)


def energy_per_call(nvml: Optional[Nvml], fn: Callable[[], None]) -> tuple[Optional[float], float]:
    """(J per call or None without NVML, wall seconds per call) over >= ENERGY_MIN_SECONDS of repeated calls."""
    torch.cuda.synchronize()
    n, e0, t0 = 0, nvml.energy_J() if nvml else None, time.perf_counter()
    while True:
        fn()
        n += 1
        torch.cuda.synchronize()
        if time.perf_counter() - t0 >= ENERGY_MIN_SECONDS:
            break
    dt = (time.perf_counter() - t0) / n
    return ((nvml.energy_J() - e0) / n if nvml else None), dt


# --------------------------------------------------------------------------- copy bandwidth

@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(dst_ptr + offs, tl.load(src_ptr + offs, mask=mask), mask=mask)


def measure_copy(nbytes: int, repeats: int, peak_GBps: float) -> tuple[CopyBandwidth, list[str]]:
    """Device-to-device copy of ``nbytes``: the faster of a Triton copy kernel and torch's copy_."""
    n = nbytes // 4
    src = torch.randint(-2 ** 31, 2 ** 31, (n,), dtype=torch.int32, device="cuda")
    dst = torch.empty_like(src)
    block = 8192
    triton_ms = time_in_graph(lambda i: _copy_kernel[(triton.cdiv(n, block),)](src, dst, n, BLOCK=block,
                                                                               **compile_options(8)), 4, repeats)
    torch_ms = time_in_graph(lambda i: dst.copy_(src), 4, repeats)
    if not torch.equal(src[:1024], dst[:1024]):
        raise LlmaccelError("copy kernel check failed: destination differs from source")
    ms = min(triton_ms, torch_ms)
    gbps = 2 * n * 4 / (ms * 1e-3) / 1e9
    notes = [f"copy bandwidth: triton copy kernel {2 * n * 4 / (triton_ms * 1e6):.1f} GB/s, torch copy_ "
             f"{2 * n * 4 / (torch_ms * 1e6):.1f} GB/s (the faster is copy_bandwidth)"]
    return CopyBandwidth(provenance="measured", bytes_copied=n * 4, repeats=repeats, GBps=gbps, peak_GBps=peak_GBps,
                         share_of_peak=gbps / peak_GBps), notes


# --------------------------------------------------------------------------- kernel rows

def bench_gemv(o: int, k: int, bits: int, group: int, activation: str, block_os: tuple[int, ...],
               gpis: tuple[int, ...], repeats: int, copy: Optional[CopyBandwidth], say: Say) -> KernelBench:
    """The decode GEMV on a synthetic packed layer, fastest of the tilings tried (L2 defeated by rotation)."""
    import numpy as np

    from llmaccel.gpu_baseline.synthetic import synthetic_packed
    dev = torch.device("cuda")
    fmt = LayerFormat(o, k, bits, group, True, None)
    l2 = getattr(torch.cuda.get_device_properties(dev), "L2_cache_size", 50 * 2 ** 20)
    copies = max(2, -(-3 * l2 // fmt.total_bytes))
    gen, rng = torch.Generator(device=dev).manual_seed(0), np.random.default_rng(0)
    layers = [synthetic_packed(fmt, dev, gen, rng) for _ in range(copies)]
    if activation == "int8":
        q = torch.randint(-127, 128, (1, k), dtype=torch.int8, device=dev)
        s = torch.full((1,), 0.01, device=dev)
        act_bytes = k
    else:
        x = (torch.randn((1, k), device=dev) * 0.1).half()
        act_bytes = 2 * k
    best = None
    for bo in block_os:
        for gpi in gpis:
            cfg = GemvConfig(block_o=bo, groups_per_iter=gpi)
            split = choose_split_k(layers[0], cfg, dev)
            call = ((lambda i, c=cfg: int8_linear(layers[i % copies], q, s, gemv=c)) if activation == "int8"
                    else (lambda i, c=cfg: fp16_linear(layers[i % copies], x, gemv=c)))
            ms = time_in_graph(call, 2 * copies, repeats)
            say(f"  gemv {o}x{k} w{bits} g{group} {activation} block_o={bo} groups/iter={gpi} split_k={split}: "
                f"{ms * 1e3:.1f} us")
            if best is None or ms < best[0]:
                best = (ms, split, bo, gpi)
    ms, split, bo, gpi = best
    moved = fmt.total_bytes + act_bytes + 4 * o
    gbps = moved / (ms * 1e-3) / 1e9
    return KernelBench(provenance="measured", kernel="decode_gemv", format=f"w{bits}-g{group}-sym",
                       activation=activation, shape={"out_features": o, "in_features": k, "block_o": bo, "groups_per_iter": gpi},
                       split_k=split, repeats=repeats, ms=ms, bytes_moved=moved, GBps=gbps,
                       share_of_copy=(gbps / copy.GBps) if copy else None)


# --------------------------------------------------------------------------- model runs

@dataclass
class PhaseResult:
    ms_per_token: float
    energy_J: Optional[float]
    seconds_per_run: float
    step_ms: list[float] = field(default_factory=list)


def _run(phase: str, model: str, recipe: str, impl: str, weights: str, p: int, d: int, repeats: int,
         r: PhaseResult, graphs: Optional[bool]) -> ModelRun:
    tokens = p if phase == "prefill" else d
    e = r.energy_J
    return ModelRun(provenance="measured", phase=phase, model=model, recipe=recipe, impl=impl, weights=weights,
                    prefill=p, decode=d, repeats=repeats, cuda_graphs=graphs, ms_per_token=r.ms_per_token,
                    tokens_per_s=1e3 / r.ms_per_token, energy_J=e,
                    avg_power_W=None if e is None else e / (tokens * r.ms_per_token / 1e3),
                    tokens_per_J=None if e is None else tokens / e)


def bench_triton_model(model, prefill: int, decode: int, repeats: int, nvml: Optional[Nvml]
                       ) -> tuple[PhaseResult, PhaseResult]:
    """Prefill ms/token and the median CUDA-graph decode step of a TritonModel, with NVML energy per run."""
    from llmaccel.gpu_baseline.triton_model import DecodeGraph
    if prefill + decode > model.max_len:
        raise LlmaccelError(f"prefill + decode = {prefill + decode} exceeds the model's max_len={model.max_len}")
    graph = DecodeGraph(model)
    ids = [(7 * i + 1) % model.shape.vocab_size for i in range(prefill)]

    def do_prefill():
        model.prefill(ids)

    steps: list[float] = []

    def do_decode(record: bool = False):
        model.prefill(ids) if model.length != prefill else None
        torch.cuda.synchronize()
        evs = []
        for _ in range(decode):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            graph.decode(1)
            b.record()
            evs.append((a, b))
        torch.cuda.synchronize()
        if record:
            steps.extend(a.elapsed_time(b) for a, b in evs)
        model.length = prefill

    do_prefill()
    torch.cuda.synchronize()
    pre = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        do_prefill()
        b.record()
        b.synchronize()
        pre.append(a.elapsed_time(b))
    pre_e, pre_s = energy_per_call(nvml, do_prefill)
    for _ in range(repeats):
        do_decode(record=True)
    dec_e, dec_s = energy_per_call(nvml, do_decode)
    return (PhaseResult(statistics.median(pre) / prefill, pre_e, pre_s),
            PhaseResult(statistics.median(steps), dec_e, dec_s, steps))


def check_hf_family(spec) -> None:
    """The dense FP16 transformers baseline is built as a LlamaForCausalLM (:func:`bench_hf`); refuse another
    block rather than time a Llama of its shapes under its name. The Triton runs take every family."""
    a = spec.arch
    llama_block = (a.norm.kind == "rmsnorm" and a.activation == "silu" and a.gated and a.positions == "rope"
                   and not a.biased)
    if not llama_block:
        raise LlmaccelError(f"the dense FP16 transformers baseline builds LlamaForCausalLM; model '{spec.name}' is "
                            f"family '{spec.family}' (norm={a.norm.kind}, activation={a.activation}, "
                            f"positions={a.positions}, biases={list(a.biased)}); allowed: a Llama-block family "
                            f"(llama, mistral), or --no-hf to measure the Triton runs only")


def bench_hf(spec, prefill: int, decode: int, repeats: int, compile: bool) -> tuple[PhaseResult, PhaseResult]:
    """The dense FP16 transformers baseline of ``spec``'s shapes (synthetic weights), static KV cache."""
    check_hf_family(spec)
    from llmaccel.gpu_baseline.hf_baseline import HfBaseline, synthetic_llama
    cfg = dict(hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
               num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
               num_key_value_heads=spec.num_kv_heads, head_dim=spec.head_dim, vocab_size=spec.vocab_size,
               max_position_embeddings=spec.max_position_embeddings, rms_norm_eps=spec.rms_norm_eps,
               rope_theta=spec.rope_theta, tie_word_embeddings=spec.tie_word_embeddings)
    hf = HfBaseline.from_model(synthetic_llama(cfg, "cuda"), "cuda", compile)
    prompt = [(7 * i + 1) % spec.vocab_size for i in range(prefill)]
    t = hf.time_generation(prompt, decode, repeats=repeats)
    del hf
    torch.cuda.empty_cache()
    return PhaseResult(t.prefill_ms / prefill, None, 0.0), PhaseResult(t.decode_ms_per_token, None, 0.0)


def bundled_tokens_equal_reference(n: int, say: Say) -> tuple[bool, list[int], list[int]]:
    """Greedy tokens of the bundled model (w4-g128-rtn) on this GPU vs the PyTorch reference on CPU."""
    import tempfile

    from llmaccel.gpu_baseline.reference import ReferenceModel
    from llmaccel.gpu_baseline.triton_model import DecodeGraph, TritonModel
    from llmaccel.assets import bundled_model_dir
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import get_recipe
    prompt = [5, 17, 99, 300, 12, 7]
    with tempfile.TemporaryDirectory(prefix="llmaccel-gpu-bench-") as tmp:
        compress_checkpoint(bundled_model_dir(), get_recipe("w4-g128-rtn"), Path(tmp) / "cm")
        cm = load_compressed(Path(tmp) / "cm")
    want = list(ReferenceModel.from_compressed(cm).generate_greedy(prompt, n))
    m = TritonModel.from_compressed(cm, "cuda", max_len=len(prompt) + n)
    g = DecodeGraph(m)
    got = [int(m.prefill(prompt)[-1].argmax())]
    while len(got) < n:
        got.append(int(g.decode(got[-1])[-1].argmax()))
    say(f"  bundled model tokens equal the reference's: {got == want}")
    return got == want, got, want


# --------------------------------------------------------------------------- identity and assembly

def measured_commit() -> str:
    """The commit the run measured: ``$LLMACCEL_COMMIT`` (for a copy of the tree without .git), else git's."""
    import os
    import re
    given = os.environ.get("LLMACCEL_COMMIT")
    if given:
        if not re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?", given):
            raise LlmaccelError(f"LLMACCEL_COMMIT={given!r} is invalid; allowed: 7-40 hex digits, optional -dirty")
        return given
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise LlmaccelError(f"gpu-bench records the commit it measured, but git cannot read one in '{root}'; "
                            "allowed: a git checkout, or LLMACCEL_COMMIT=<hash> for a copy without .git") from None
    return sha + ("-dirty" if dirty else "")


def gpu_identity(nvml: Optional[Nvml], preset: Optional[str]) -> GpuIdentity:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    name = nvml.name() if nvml else props.name
    preset = preset or preset_for_gpu_name(name)
    if preset is None:
        raise LlmaccelError(f"GPU '{name}' has no device preset; allowed: give --device-preset naming one of the "
                            f"GPU presets (llmaccel presets) that describes it")
    clocks = nvml.clocks() if nvml else {}
    return GpuIdentity(name=name, device_preset=preset,
                       driver_version=nvml.driver_version() if nvml else "unknown (NVML absent, --no-energy)",
                       cuda_version=torch.version.cuda, memory_total_MiB=props.total_memory / 2 ** 20,
                       power_limit_W=nvml.power_limit_W() if nvml else None, torch_version=torch.__version__,
                       triton_version=triton.__version__, nvml_version=nvml.nvml_version() if nvml else None,
                       **clocks)


def run_gpu_bench(cfg: BenchConfig, say: Say = lambda s: print(s, file=sys.stderr)) -> GpuMeasurement:
    """Everything :class:`BenchConfig` asks for, in one run, as a validated GpuMeasurement."""
    from llmaccel.gpu_baseline.synthetic import synthetic_model
    from llmaccel.gpu_baseline.workload import gpu_workload
    from llmaccel.simulator.specs.device import load_device
    from llmaccel.simulator.specs.model import load_model_spec

    require_cuda()
    if cfg.include_hf:
        check_hf_family(load_model_spec(cfg.model))      # before anything is measured
    date = datetime.now(timezone.utc)
    commit = measured_commit()
    nvml = Nvml.open(torch.cuda.current_device()) if cfg.energy else None
    ident = gpu_identity(nvml, cfg.device_preset)
    peak = load_device(ident.device_preset).hbm_GBps
    notes: list[str] = []
    say(f"GPU {ident.name} ({ident.device_preset}), driver {ident.driver_version}, torch {ident.torch_version}, "
        f"triton {ident.triton_version}")
    idle = None
    if nvml:
        w, sec = measure_idle_power(nvml, cfg.idle_seconds)
        idle = IdlePower(provenance="measured", W=w, seconds=sec)
        say(f"idle power {w:.1f} W over {sec:.1f} s")
    copy, cnotes = measure_copy(cfg.copy_bytes, cfg.repeats, peak)
    notes += cnotes
    say(f"copy bandwidth {copy.GBps:.0f} GB/s ({100 * copy.share_of_peak:.0f} % of the preset's {peak:.0f})")
    kernels: list[KernelBench] = []
    for o, k in cfg.gemv_shapes:
        for act in cfg.activations:
            row = bench_gemv(o, k, cfg.gemv_bits, cfg.gemv_group, act, cfg.gemv_block_o, cfg.gemv_groups_per_iter,
                             cfg.repeats, copy, say)
            say(f"gemv {o}x{k} {act}: {row.GBps:.0f} GB/s = {100 * row.share_of_copy:.0f} % of copy")
            kernels.append(row)
    runs: list[ModelRun] = []
    spec = load_model_spec(cfg.model)
    work = gpu_workload(spec, cfg.recipe)
    max_len = cfg.prefill + cfg.decode
    for act in cfg.activations:
        say(f"{cfg.model} {cfg.recipe} synthetic weights, {act} activations: building")
        model = synthetic_model(spec, cfg.recipe, "cuda", max_len, act)
        pre, dec = bench_triton_model(model, cfg.prefill, cfg.decode, cfg.repeats, nvml)
        del model
        torch.cuda.empty_cache()
        impl = f"triton-{act}act"
        runs += [_run("prefill", cfg.model, cfg.recipe, impl, "synthetic", cfg.prefill, cfg.decode, cfg.repeats,
                      pre, None),
                 _run("decode", cfg.model, cfg.recipe, impl, "synthetic", cfg.prefill, cfg.decode, cfg.repeats,
                      dec, True)]
        ctx = work.mean_decode_context(cfg.prefill, cfg.decode)
        moved = int(work.decode_bytes(ctx))
        gbps = moved / (dec.ms_per_token * 1e-3) / 1e9
        kernels.append(KernelBench(provenance="measured", kernel="decode_step", format=cfg.recipe, activation=act,
                                   shape={"layers": spec.num_layers, "hidden_size": spec.hidden_size,
                                          "context": int(round(ctx))},
                                   repeats=cfg.repeats, ms=dec.ms_per_token, bytes_moved=moved, GBps=gbps,
                                   share_of_copy=gbps / copy.GBps))
        say(f"  prefill {pre.ms_per_token:.3f} ms/token, decode {dec.ms_per_token:.3f} ms/token = "
            f"{100 * gbps / copy.GBps:.0f} % of the copy-bandwidth roofline")
    if cfg.include_hf:
        say(f"{cfg.model} dense FP16 through transformers (static cache{', torch.compile' if cfg.hf_compile else ''})")
        pre, dec = bench_hf(spec, cfg.prefill, cfg.decode, cfg.repeats, cfg.hf_compile)
        runs += [_run("prefill", cfg.model, "fp16", "hf-fp16", "synthetic", cfg.prefill, cfg.decode, cfg.repeats,
                      pre, None),
                 _run("decode", cfg.model, "fp16", "hf-fp16", "synthetic", cfg.prefill, cfg.decode, cfg.repeats,
                      dec, cfg.hf_compile)]
        notes.append("hf-fp16: timed through generate (prefill = 1 new token; decode = (N - 1 new tokens) extra "
                     "time / (N - 1)); no energy measured for it")
        say(f"  prefill {pre.ms_per_token:.3f} ms/token, decode {dec.ms_per_token:.3f} ms/token")
    if cfg.bundled_tokens:
        ok, got, want = bundled_tokens_equal_reference(cfg.bundled_tokens, say)
        notes.append(f"bundled model w4-g128-rtn, {cfg.bundled_tokens} greedy tokens on this GPU (CUDA-graph decode) "
                     f"{'equal' if ok else 'DIFFER FROM'} the PyTorch reference's" + ("" if ok else f": {got} vs {want}"))
    return GpuMeasurement(schema_version=SCHEMA_VERSION, provenance="measured", date=date, commit=commit,
                          command=cfg.command or " ".join(sys.argv), gpu=ident, copy_bandwidth=copy,
                          idle_power=idle, runs=runs, kernels=kernels, notes=notes)
