"""`llmaccel presets`: the bundled devices, models and accelerator designs, with their sources.

Exploration scripts read ``--json`` to know what they can sweep; ``--show NAME``
prints every number of one preset with the source it was read from.
"""
from __future__ import annotations

import argparse

NAME = "presets"
HELP = "list the bundled device, model and design presets (with sources and fit checks)"
KINDS = ("devices", "models", "designs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=KINDS + ("all",), default="all", help="which presets to list")
    p.add_argument("--show", default=None, metavar="NAME",
                   help="one preset (device, model or design) in full, every number with its source")


def inapplicable(args) -> dict[str, str]:
    """--kind filters the listing; --show prints one preset."""
    return {"kind": "does not apply with --show (a preset name is unique across kinds)"} if args.show is not None \
        else {}


def _device_row(name: str) -> dict:
    from llmaccel.simulator.specs import FpgaDevice, load_device

    d = load_device(name)
    row = {"name": name, "kind": d.kind}
    if isinstance(d, FpgaDevice):
        row.update(part=d.part, dsp=d.available("DSP")[0],
                   hbm_GB=d.hbm.capacity_GB if d.hbm else None,
                   hbm_GBps=d.hbm.total_GBps if d.hbm else None,
                   hbm_channels=d.hbm.pseudo_channels if d.hbm else None)
    else:
        row.update(memory_GB=d.memory_GB, hbm_GBps=d.hbm_GBps, tdp_W=d.tdp_W)
    return row


def _model_row(name: str) -> dict:
    from llmaccel.simulator.specs import load_model_spec

    m = load_model_spec(name)
    return {"name": name, "params": m.num_params, "hidden_size": m.hidden_size, "num_layers": m.num_layers,
            "num_heads": m.num_heads, "num_kv_heads": m.num_kv_heads, "vocab_size": m.vocab_size}


def _design_row(name: str) -> dict:
    from llmaccel.mapping.designs import load_design      # the search path, and the HLS reports a design names
    from llmaccel.simulator.resources import DesignFitError, fit_check, resource_usage
    from llmaccel.simulator.specs import load_device

    d = load_design(name)
    row = {"name": name, "device": d.device, "clock_MHz": d.clock_MHz, "cores": d.cores,
           "chains_per_core": d.chains_per_core, "chain_len": d.chain_len,
           "mac_dtype": d.matrix_engine.mac_dtype,
           # prefill peak in the engine's own datatype (2 ops per MAC); the INT8 figure only where it computes INT8
           "peak_TOPS": 2 * d.peak_macs_per_s / 1e12,
           "peak_int8_TOPS": d.peak_int8_tops if d.matrix_engine.mac_dtype == "int8" else None,
           "resources": resource_usage(d).totals}
    try:
        report = fit_check(d, load_device(d.device))
        # True: every resource checked and fits; None: fits what could be checked, some counts unknown.
        unknown = [u for u in report.unchecked if not u.startswith("clock_MHz")]
        row.update(fits=None if unknown else True, unchecked=list(report.unchecked))
    except DesignFitError as exc:
        row.update(fits=False, fit_error=str(exc))
    return row


def _show(name: str) -> dict:
    from llmaccel.mapping.designs import load_design
    from llmaccel.simulator.design import list_designs
    from llmaccel.simulator.resources import fit_check, resource_usage, unit_costs
    from llmaccel.simulator.specs import list_devices, list_models, load_device, load_model_spec, sourced_facts
    from llmaccel.simulator.specs._yaml import SpecError, to_dict

    if name in list_devices():
        dev = load_device(name)
        return {"kind": "device", "name": name,
                "facts": {k: {"value": v, "source": src} for k, (v, src) in sourced_facts(dev).items()}}
    if name in list_models():
        m = load_model_spec(name)
        return {"kind": "model", **to_dict(m), "num_params": m.num_params,
                "linear_shapes": [list(t) for t in m.linear_shapes()]}
    if name in list_designs():
        d = load_design(name)
        usage = resource_usage(d)
        out = {"kind": "design", **to_dict(d),
               "unit_costs": {k: {**to_dict(v)} for k, v in unit_costs(d).items()},
               "resources": usage.totals, "resource_table": usage.table()}
        try:
            out["fit"] = fit_check(d, load_device(d.device)).to_dict()
        except SpecError as exc:  # device preset missing: say so
            out["fit"] = {"error": str(exc)}
        return out
    raise SpecError(f"--show '{name}' is not a preset; devices: {', '.join(list_devices())}; models: "
                    f"{', '.join(list_models())}; designs: {', '.join(list_designs())}")


def run(args) -> dict:
    from llmaccel.simulator.design import list_designs
    from llmaccel.simulator.specs import list_devices, list_models

    if args.show is not None:
        result = _show(args.show)
        if not args.json:
            _print_show(result)
        return result
    listers = {"devices": (list_devices, _device_row), "models": (list_models, _model_row),
               "designs": (list_designs, _design_row)}
    kinds = KINDS if args.kind == "all" else (args.kind,)
    result = {k: [listers[k][1](n) for n in listers[k][0]()] for k in kinds}
    if not args.json:
        for k in kinds:
            print(f"{k}:")
            for row in result[k]:
                rest = ", ".join(f"{key}={val}" for key, val in row.items() if key not in ("name", "resources"))
                print(f"  {row['name']:<18} {rest}")
    return result


def _print_show(result: dict) -> None:
    if result["kind"] == "device":
        print(f"device {result['name']}")
        for k, f in result["facts"].items():
            print(f"  {k:<32} {str(f['value']):>12}   [{f['source']}]")
        return
    if result["kind"] == "design":
        print(f"design {result['name']} on {result['device']} @ {result['clock_MHz']} MHz")
        print(result["resource_table"])
        for unit, cost in result["unit_costs"].items():
            print(f"  {unit}: {cost['source']}")
        fit = result.get("fit", {})
        if "unchecked" in fit and fit["unchecked"]:
            print("  unchecked: " + "; ".join(fit["unchecked"]))
        return
    for k, v in result.items():
        print(f"  {k}: {v}")
