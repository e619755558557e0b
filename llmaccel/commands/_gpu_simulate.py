"""`llmaccel simulate --device <gpu>`: the modelled GPU baseline, dispatched from simulate.py.

Kept apart from simulate.py (the FPGA path) so the GPU model's arguments,
checks and printing live in one place: simulate.py only hands over when
``--device`` is given.
"""
from __future__ import annotations

from typing import Optional

from llmaccel.errors import LlmaccelError

DEFAULT_GPU_RECIPE = "fp16"


def run_device(args) -> Optional[dict]:
    """The GPU estimate for ``--device <gpu>``; None when ``--device`` names the design's own FPGA
    (the FPGA path then runs as usual). Bad combinations raise one LlmaccelError."""
    from llmaccel.simulator.specs.device import load_device
    dev = load_device(args.device)
    if dev.kind == "fpga":
        if args.design is None:
            raise LlmaccelError(f"--device {args.device} is an FPGA: an FPGA run needs an accelerator design "
                                f"(--design NAME or YAML); --device alone takes a GPU preset")
        from llmaccel.simulator.design import load_design
        d = load_design(args.design)
        if d.device != dev.name:
            raise LlmaccelError(f"--device {args.device} does not match design '{d.name}', which targets "
                                f"{d.device}; drop --device or pick a design for {args.device}")
        return None
    if args.design is not None:
        raise LlmaccelError(f"--device {args.device} is a GPU and --design {args.design} an FPGA design: give one "
                            f"of them (a GPU runs the modelled baseline, no design)")
    for flag, given in (("--trace", args.trace is not None), ("--no-fuse", args.no_fuse),
                        ("--explain", getattr(args, "explain", False))):
        if given:
            raise LlmaccelError(f"{flag} applies to FPGA designs; it has no meaning with a GPU --device")
    if args.prefill + args.decode > args.max_len:
        raise LlmaccelError(f"--prefill + --decode = {args.prefill + args.decode} exceeds --max-len {args.max_len}")
    from llmaccel.gpu_baseline.perf_model import estimate_gpu
    est = estimate_gpu(args.model, dev.name, args.recipe or DEFAULT_GPU_RECIPE, args.prefill, args.decode)
    out = est.to_dict()
    if args.plot is not None:
        out["plot"] = _plot(est, args.plot)
    if not args.json:
        _print(out)
    return out


def _print(o: dict) -> None:
    print(f"{o['model']} on {o['device']} ({o['recipe']}), prefill {o['prefill']} + decode {o['decode']}: "
          f"{o['provenance']} (efficiency: {o['efficiency_source']})")
    print(f"  TTFT            {o['ttft_s'] * 1e3:10.2f} ms   ({o['prefill_tokens_per_s']:.0f} tokens/s, "
          f"{o['prefill_bound']}-bound)")
    print(f"  decode          {o['decode_ms_per_token']:10.3f} ms/token = {o['decode_tokens_per_s']:.1f} tokens/s "
          f"({o['bound']}-bound; datasheet roofline {o['roofline_decode_tokens_per_s']:.1f})")
    print(f"  traffic         {o['bytes_per_token'] / 1e9:10.3f} GB/token, {o['flops_per_token'] / 1e9:.2f} GFLOP/token "
          f"(decode mean); resident {o['resident_GB']:.1f} GB")
    print(f"  power           {o['power_W']:10.1f} W, {o['tokens_per_J']:.3f} tokens/J  [{o['power_source']}]")
    print(f"  efficiency      {o['efficiency_detail']}")
    for n in o["notes"]:
        print(f"  note            {n}")
    if "plot" in o:
        print(f"  wrote {o['plot']}")


def _plot(est, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(["modelled", "datasheet roofline"], [est.decode_tokens_per_s, est.roofline_decode_tokens_per_s],
           color=["tab:green", "tab:gray"])
    ax.set_ylabel("decode tokens/s")
    ax.set_title(f"{est.model} ({est.recipe}) on {est.device}\n{est.efficiency_source}", fontsize=9)
    fig.tight_layout()
    from llmaccel.reports.figures import save_png
    return str(save_png(fig, path, "--plot"))
