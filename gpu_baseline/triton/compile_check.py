"""Compile every Triton kernel specialisation for a CUDA target without a GPU (Triton ships ptxas).

Why: the interpreter checks the kernels' arithmetic on CPU, but not that they
compile for a GPU (tile shapes, 4-D reshapes, INT8 ``tl.dot``, 64-bit shifts);
this does, for every packed format, on any machine. It also checks the
compiled FP32 code has no fused multiply-add (the contract rounds each product
and sum on its own; launches pass ``enable_fp_fusion=False``).

    python -m llmaccel.gpu_baseline.triton.compile_check [--arch 90] [--quick | --smoke]

Prints one JSON line: kernels compiled, failures (with the first error line),
and FMA instructions found. Must run without ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PTR = {"q": "*i8", "f32": "*fp32", "w": "*i32", "u8": "*u8", "f16": "*fp16", "i32": "*i32"}


def _linear_specs(quick: bool) -> list[tuple[str, dict, dict]]:
    from llmaccel.sparse_dsp.packed_format import ASYMMETRIC_BITS, SUPPORTED_BITS, SUPPORTED_NM
    fmts = [(b, nm, sym) for b in SUPPORTED_BITS for nm in (None, *SUPPORTED_NM) for sym in (True, False)
            if sym or b in ASYMMETRIC_BITS]
    if quick:
        fmts = [(4, None, True), (3, (2, 4), False), (2, (8, 16), False), (8, (4, 8), True)]
    fmt_sig = {"codes_ptr": "*i32", "idx_ptr": "*i32", "zeros_ptr": "*u8", "scales_ptr": "*fp16", "b_ptr": "*fp32"}
    out = []
    for bits, nm, sym in fmts:
        n, m = nm or (1, 1)
        idx_bits = (m.bit_length() - 1) if nm else 1
        # biased layers (GPT-2, OPT, Qwen2's q/k/v) on the asymmetric formats, unbiased on the symmetric ones:
        # both epilogues compile, without doubling the specialisations
        base = dict(BITS=bits, G=128, N=n, M=m, IDX_BITS=idx_bits, SYM=sym, BIAS=not sym)
        for split in (1, 4):
            sig = {"xq_ptr": "*i8", "sx_ptr": "*fp32", **fmt_sig, "y_ptr": "*fp32", "part_ptr": "*i32", "O": "i32",
                   "code_words": "i32", "idx_words": "i32", "ngroups": "i32", "groups_per_split": "i32"}
            out.append(("_gemv_int8_kernel", sig, dict(base, BLOCK_O=32, SPLIT=split, STORE_PARTIALS=split > 1,
                                                       GPI=4 if split == 1 else 1)))
        sig = {"xq_ptr": "*i8", "sx_ptr": "*fp32", **fmt_sig, "y_ptr": "*fp32", "part_ptr": "*i32", "T": "i32",
               "O": "i32", "K": "i32", "code_words": "i32", "idx_words": "i32", "ngroups": "i32"}
        out.append(("_gemm_int8_kernel", sig, dict(base, BLOCK_T=16, BLOCK_O=32, STORE_PARTIALS=False)))
        sig = {"x_ptr": "*fp16", **fmt_sig, "part_ptr": "*fp32", "O": "i32", "code_words": "i32", "idx_words": "i32",
               "ngroups": "i32", "groups_per_split": "i32"}
        out.append(("_gemv_fp16_kernel", sig, dict(base, BLOCK_O=32, GPI=4)))
        sig = {"x_ptr": "*fp16", **fmt_sig, "y_ptr": "*fp32", "T": "i32", "O": "i32", "K": "i32", "code_words": "i32",
               "idx_words": "i32", "ngroups": "i32"}
        out.append(("_gemm_fp16_kernel", sig, dict(base, BLOCK_T=16, BLOCK_O=32)))
    for bias in (False, True):
        out.append(("_rescale_kernel", {"part_ptr": "*i32", "sx_ptr": "*fp32", "scales_ptr": "*fp16", "b_ptr": "*fp32",
                                        "y_ptr": "*fp32", "O": "i32", "ngroups": "i32"}, dict(BIAS=bias, BLOCK_O=32)))
    return out


def _other_specs() -> list[tuple[str, dict, dict]]:
    att = {"q_ptr": "*i8", "sq_ptr": "*fp32", "k_ptr": "*i8", "sk_ptr": "*fp32", "v_ptr": "*i8", "sv_ptr": "*fp32",
           "start_ptr": "*i32", "out_ptr": "*fp32", "dot_ptr": "*i32", "H": "i32", "KVH": "i32", "max_len": "i32",
           "c": "fp32"}
    norm = {"x_ptr": "*fp32", "res_ptr": "*fp32", "w_ptr": "*fp32", "b_ptr": "*fp32", "xo_ptr": "*fp32", "q_ptr": "*i8",
            "s_ptr": "*fp32", "h_ptr": "*fp16", "T": "i32", "K": "i32", "eps": "fp32"}
    act = {"g_ptr": "*fp32", "u_ptr": "*fp32", "g_stride": "i32", "u_stride": "i32", "q_ptr": "*i8", "s_ptr": "*fp32",
           "h_ptr": "*fp16", "T": "i32", "K": "i32"}
    emb = {"ids_ptr": "*i64", "emb_ptr": "*fp16", "pos_ptr": "*fp32", "start_ptr": "*i32", "out_ptr": "*fp32", "H": "i32"}
    out = [("_attention_kernel", att, dict(D=128, HB=1, BLOCK=32, STORE_DOT=False)),
           ("_attention_kernel", att, dict(D=32, HB=1, BLOCK=32, STORE_DOT=True)),
           ("_quantize_kernel", {"x_ptr": "*fp32", "q_ptr": "*i8", "s_ptr": "*fp32", "K": "i32"}, dict(CHUNK=1024)),
           ("_rope_quantize_kernel", {"x_ptr": "*fp32", "cos_ptr": "*fp32", "sin_ptr": "*fp32", "q_ptr": "*i8",
                                      "s_ptr": "*fp32", "start_ptr": "*i32", "NH": "i32"},
            dict(D=128, HB=1, ROPE=True, AT_START=True))]
    out += [("_add_norm_kernel", norm, dict(ADD=True, LAYERNORM=ln, OUT=o, RB=1, CHUNK=1024))
            for ln in (False, True) for o in ("int8", "fp16")]
    out += [("_act_prepare_kernel", act, dict(ACT=a, GATED=a == "silu", OUT="int8", RB=1, CHUNK=1024))
            for a in ("silu", "gelu_tanh", "gelu", "relu")]
    out += [("_embed_kernel", emb, dict(LEARNED=learned, CHUNK=1024)) for learned in (False, True)]
    return out


def _kernel(name: str):
    from llmaccel.gpu_baseline.triton import activation, attention, embed, linear, norm, quantize
    for mod in (linear, attention, quantize, norm, activation, embed):
        if hasattr(mod, name):
            return getattr(mod, name)
    raise KeyError(name)


def compile_one(spec: tuple[str, dict, dict], arch: int) -> dict[str, Any]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    name, sig, consts = spec
    sig = dict(sig, **{k: "constexpr" for k in consts})
    t0 = time.perf_counter()
    try:
        k = triton.compile(ASTSource(_kernel(name), sig, consts), target=GPUTarget("cuda", arch, 32),
                           options={"num_warps": 4, "enable_fp_fusion": False})
    except Exception as exc:  # noqa: BLE001 - reported, not hidden: the line names kernel, constants and error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"kernel": name, "consts": consts, "ok": False, "error": first[:300]}
    ptx = k.asm.get("ptx", "")
    return {"kernel": name, "consts": consts, "ok": True, "seconds": round(time.perf_counter() - t0, 2),
            "fma_f32": len(re.findall(r"\bfma\.rn\.f32\b", ptx))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10 (80 A100, 90 H100/H200)")
    ap.add_argument("--quick", action="store_true", help="four formats instead of every one")
    ap.add_argument("--smoke", action="store_true",
                    help="six kernels only (the biased INT8 GEMV on 3-bit 2:4, attention, RoPE + quantize, "
                         "add + LayerNorm, GELU (erf), embedding + learned positions)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print(json.dumps({"error": "unset TRITON_INTERPRET: the interpreter does not compile"}))
        return 2
    specs = _linear_specs(args.quick) + _other_specs()
    if args.smoke:
        specs = [sp for sp in specs if (sp[0] == "_gemv_int8_kernel" and sp[2]["BITS"] == 3 and sp[2]["M"] == 4
                                        and not sp[2]["SYM"] and sp[2]["SPLIT"] == 1)
                 or (sp[0] == "_attention_kernel" and sp[2]["D"] == 128) or sp[0] == "_rope_quantize_kernel"
                 or (sp[0] == "_add_norm_kernel" and sp[2]["LAYERNORM"] and sp[2]["OUT"] == "int8")
                 or (sp[0] == "_act_prepare_kernel" and sp[2]["ACT"] == "gelu")
                 or (sp[0] == "_embed_kernel" and sp[2]["LEARNED"])]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(compile_one, specs, [args.arch] * len(specs)))
    bad = [r for r in results if not r["ok"]]
    fma = [r for r in results if r.get("fma_f32")]
    print(json.dumps({"check": "triton_compile", "target": f"cuda sm_{args.arch}", "kernels": len(results),
                      "failed": len(bad), "failures": bad[:10], "with_fp32_fma": len(fma),
                      "fma_kernels": [(r["kernel"], r["consts"]) for r in fma[:5]]}))
    return 1 if bad or fma else 0


if __name__ == "__main__":
    sys.exit(main())
