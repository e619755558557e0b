"""Seeded generators of hostile inputs for every file format and CLI entry point, and one judge.

Shared by the bounded suite (``tests/fuzz/test_fuzz.py``) and the long runs of
``benchmarks/fuzz.py``; a case is a function of ``random.Random`` state only, so
a seed names the same inputs on every machine.

Every case ends in one of:

* ``ok``: accepted (exit 0);
* ``refused``: one :class:`LlmaccelError` (exit 2);
* ``crash``: any other exception, or an exit code outside {0, 2}, or (``--json``)
  stdout that is not exactly one JSON object: a bug;
* ``silent``: a case *known to be bad* (a quoted number, an offset past the end, a
  flag that does not apply) that was accepted: the input was silently misread.

Cases whose badness is not known in advance (a random bit flip may make another
valid instruction) may be ``ok`` or ``refused``; only a crash counts against them.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import random
import shutil
import signal
import struct
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import yaml

from llmaccel.errors import LlmaccelError

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "simulator" / "presets"
OUTCOMES = ("ok", "refused", "crash", "silent", "timeout")


@dataclass
class Tally:
    """Counts per format and outcome, with the first few crashes and silent acceptances for the report."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    max_examples: int = 20

    def add(self, fmt: str, outcome: str, detail: str = "", case: Any = None) -> None:
        row = self.counts.setdefault(fmt, {k: 0 for k in OUTCOMES})
        row[outcome] += 1
        if outcome in ("crash", "silent", "timeout") and len(self.examples) < self.max_examples:
            self.examples.append({"format": fmt, "outcome": outcome, "detail": detail[:400],
                                  "case": repr(case)[:400]})

    def total(self, outcome: Optional[str] = None) -> int:
        return sum(sum(r.values()) if outcome is None else r[outcome] for r in self.counts.values())


class CaseTimeout(BaseException):
    """Raised by SIGALRM: a BaseException, so the CLI's ``except Exception`` bug path does not catch it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise CaseTimeout()
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def judge(fn: Callable[[], Any], known_bad: bool) -> tuple[str, str]:
    """Run one library-level case: ``fn`` returns normally (ok) or raises."""
    try:
        fn()
    except LlmaccelError as exc:
        return "refused", str(exc)[:200]
    except CaseTimeout:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash is what we are looking for
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
        return "crash", f"{type(exc).__name__} at {where}: {exc}"
    return ("silent", "accepted") if known_bad else ("ok", "")


# ----- hostile values ---------------------------------------------------------------------------------

def non_utf8(rng: random.Random) -> str:
    """A string as Python hands over non-UTF-8 argv bytes (surrogateescape)."""
    # a lone continuation byte (0x80-0xbf) first: never valid UTF-8, whatever follows
    raw = bytes([rng.randrange(0x80, 0xC0)] + [rng.randrange(0x80, 0x100) for _ in range(rng.randint(0, 3))])
    return "x" + raw.decode("utf-8", "surrogateescape")


def junk_text(rng: random.Random) -> str:
    pool = ["", " ", "-", "--", "nan", "inf", "-inf", "1e309", "0x10", "1_000", "١٢", "\t", "null", "~",
            "true", "[]", "{}", "'", '"', "%s", "../../etc/passwd", "a" * rng.randint(1, 300), "\u202e", "🙂"]
    return rng.choice(pool)


# ----- ISA words --------------------------------------------------------------------------------------

_PROGRAMS: list[list] = []


def isa_programs() -> list[list]:
    """Real instruction streams of the tiny model on the U280 design: decode, prefill chunk and LM head."""
    if not _PROGRAMS:
        from llmaccel.mapping.sim_api import build_compiler
        comp, _, _ = build_compiler("tiny", "flightllm-u280", "w8", max_len=128)
        progs = [comp.layer_program("decode", comp.decode_bucket_of(9), 1), comp.head_program(),
                 comp.prefill_programs(comp.prefill_bucket_of(8))[0]]
        from llmaccel.simulator.isa import decode
        for prog in progs:
            _PROGRAMS.extend(decode(st.words) for st in prog.cores)
    return _PROGRAMS


def isa_case(rng: random.Random) -> tuple[str, bool, Callable[[], Any]]:
    from llmaccel.simulator.isa import IsaError, assemble, decode, disassemble, encode
    progs = isa_programs()
    kind = rng.choice(["random", "random", "flip", "truncate", "splice", "asm"])
    if kind == "random":
        words = np.array([rng.getrandbits(32) for _ in range(rng.randint(0, 24))], dtype=np.uint32)
    else:
        base = progs[rng.randrange(len(progs))]
        start = rng.randrange(0, max(1, len(base) - 16))
        words = encode(base[start:start + rng.randint(1, 16)])
    known_bad = False
    if kind == "flip":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(words))
            words[i] ^= np.uint32(1 << rng.randrange(32))
    elif kind == "truncate":
        # cut inside the last instruction of a valid program: refused, never a shorter valid program
        try:
            instrs = decode(words)
        except IsaError:
            instrs = []
        if instrs and instrs[-1].WORDS > 1:
            words = words[:-rng.randint(1, instrs[-1].WORDS - 1)]
            known_bad = True
    elif kind == "splice":
        words = np.concatenate([words, np.array([rng.getrandbits(32)], dtype=np.uint32)])
    elif kind == "asm":
        text = disassemble(words) if _decodes(words) else "LD\n"
        lines = text.splitlines() or [""]
        i = rng.randrange(len(lines))
        toks = lines[i].split()
        if toks:
            toks[rng.randrange(len(toks))] = junk_text(rng) if rng.random() < 0.7 else str(rng.getrandbits(40))
        lines[i] = " ".join(toks)
        src = "\n".join(lines)
        return kind, False, lambda: _asm_roundtrip(src, assemble, encode, decode)
    return kind, known_bad, lambda: _decode_roundtrip(words, decode, encode)


def _decodes(words) -> bool:
    from llmaccel.simulator.isa import IsaError, decode
    try:
        decode(words)
        return True
    except IsaError:
        return False


def _decode_roundtrip(words, decode, encode):
    instrs = decode(words)
    again = encode(instrs)
    if not np.array_equal(again, np.asarray(words, dtype=np.uint32)):
        raise AssertionError("decode -> encode does not give back the words")


def _asm_roundtrip(src, assemble, encode, decode):
    instrs = assemble(src)
    if decode(encode(instrs)) != instrs:
        raise AssertionError("assemble -> encode -> decode does not give back the instructions")


# ----- YAML specs: designs, devices, models, recipes -------------------------------------------------

RECIPE_YAML = {"name": "fuzz", "attn": {"bits": 4, "group_size": 128, "symmetric": True, "method": "rtn"},
               "mlp": {"bits": 4, "group_size": 128, "nm": [2, 4], "prune_method": "magnitude"},
               "act_bits": 8, "kv_bits": 8, "lm_head_bits": 8, "calibration_tokens": 4096}


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


def yaml_bases() -> list[tuple[str, dict]]:
    out = []
    for kind in ("designs", "devices", "models"):
        for p in sorted((PRESETS / kind).glob("*.yaml")):
            out.append((kind, yaml.safe_load(p.read_text())))
    out.append(("recipes", RECIPE_YAML))
    return out


def _loader(kind: str) -> Callable[[str], Any]:
    if kind == "designs":
        from llmaccel.simulator.design import load_design
        return load_design
    if kind == "devices":
        from llmaccel.simulator.specs import load_device
        return load_device
    if kind == "models":
        from llmaccel.simulator.specs import load_model_spec
        return load_model_spec
    from llmaccel.mapping.recipe import get_recipe
    return get_recipe


def _leaves(obj: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in _leaves(v, path + (k,))]
    if isinstance(obj, list):
        return [leaf for i, v in enumerate(obj) for leaf in _leaves(v, path + (i,))]
    return [(path, obj)]


def _set(obj: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _free_text(path: tuple) -> bool:
    """Leaves whose value is free text or provenance (any string is fine there)."""
    return any(p in ("notes", "sources", "source", "description", "name", "measured_llm_W", "hbm_power_note",
                     "part", "user_region_name", "speed_grade", "generation", "rope_type", "device", "kind",
                     "dsp_primitive") for p in path if isinstance(p, str))


def _spec_class(kind: str, data: dict) -> type:
    if kind == "designs":
        from llmaccel.simulator.design import AcceleratorDesign
        return AcceleratorDesign
    if kind == "devices":
        from llmaccel.simulator.specs.device import _KINDS
        return _KINDS[data["kind"]]
    if kind == "models":
        from llmaccel.simulator.specs import ModelSpec
        return ModelSpec
    from llmaccel.mapping.recipe import Recipe
    return Recipe


def _annotation(kind: str, data: dict, path: tuple) -> Any:
    """The annotation of the field at ``path`` (Optional[X] as X), or None where it is free-form."""
    import dataclasses
    import typing
    tp: Any = _spec_class(kind, data)
    for key in path:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) is typing.Union and len(args) == 1:
            tp = args[0]
        if dataclasses.is_dataclass(tp) and isinstance(key, str):
            tp = typing.get_type_hints(tp).get(key)
        elif typing.get_origin(tp) is tuple:
            targs = typing.get_args(tp)
            tp = targs[0] if len(targs) == 2 and targs[1] is Ellipsis else targs[key]
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) is typing.Union and len(args) == 1 else tp


def yaml_case(rng: random.Random, tmp: Path, bases: list[tuple[str, dict]]) -> tuple[str, bool, Callable[[], Any]]:
    kind, base = bases[rng.randrange(len(bases))]
    data = json.loads(json.dumps(base))
    numeric = [(p, v) for p, v in _leaves(data) if isinstance(v, (int, float)) and not isinstance(v, bool)
               and not _free_text(p)]
    bools = [(p, v) for p, v in _leaves(data) if isinstance(v, bool) and not _free_text(p)]
    mutation = rng.choice(["quoted_number", "non_finite", "unknown_key", "duplicate_key", "wrong_type",
                           "hz_clock", "quoted_bool", "fraction", "scale", "text_edit", "raw_bytes", "delete"])
    known_bad = True
    text: Optional[str] = None
    if mutation == "quoted_number" and numeric:
        p, v = rng.choice(numeric)
        _set(data, p, str(v))
        mutation += f" {'.'.join(map(str, p))}"
        from llmaccel.simulator.specs._yaml import safe_load_strict
        # PyYAML writes '1e-05' unquoted (a string to YAML 1.1), which our loader reads as the number it is
        known_bad = safe_load_strict(_dump({"k": str(v)}))["k"] == str(v)
    elif mutation == "non_finite" and numeric:
        p, _ = rng.choice(numeric)
        _set(data, p, rng.choice([math.inf, -math.inf, math.nan]))
    elif mutation == "unknown_key":
        data[f"unknown_{rng.randrange(1000)}"] = rng.choice([1, "x", None, [1]])
    elif mutation == "duplicate_key":
        key = rng.choice(list(data))
        text = _dump(data) + _dump({key: data[key]})
    elif mutation == "wrong_type" and numeric:
        p, _ = rng.choice(numeric)
        _set(data, p, rng.choice([[1, 2], {"a": 1}, "many", True]))
    elif mutation == "hz_clock" and any(str(p[-1]).endswith("_MHz") for p, _ in numeric):
        p, v = rng.choice([(p, v) for p, v in numeric if str(p[-1]).endswith("_MHz")])
        _set(data, p, v * 1e6)
    elif mutation == "quoted_bool" and bools:
        p, v = rng.choice(bools)
        _set(data, p, str(v).lower())
    elif mutation == "fraction" and any(isinstance(v, int) and v > 1 for _, v in numeric):
        p, v = rng.choice([(p, v) for p, v in numeric if isinstance(v, int) and v > 1])
        known_bad = _annotation(kind, data, p) is int  # a float field that holds a whole number takes 8.5
        _set(data, p, v + 0.5)
    elif mutation == "scale" and numeric:
        known_bad = False  # a different number may well be a different valid design
        p, v = rng.choice(numeric)
        _set(data, p, rng.choice([0, -1, -v, v * 2, v // 2, v * 1000, 2 ** 63, 1e-300]))
    elif mutation == "delete":
        known_bad = False  # fields with defaults may be dropped
        key = rng.choice(list(data))
        del data[key]
    elif mutation == "text_edit":
        known_bad = False
        text = _dump(data)
        i = rng.randrange(len(text))
        edit = rng.choice(["", ":", " ", "\n", "- ", "&a ", "*a", "{", "'", "\t", "!!python/object:os.system"])
        text = text[:i] + edit + text[i + rng.randint(0, 3):]
    elif mutation == "raw_bytes":
        known_bad = True
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        path = tmp / f"c{rng.getrandbits(32)}.yaml"
        path.write_bytes(raw)
        load = _loader(kind)
        return f"{kind}:{mutation}", known_bad, lambda: (load(str(path)), path.unlink())
    else:
        known_bad = False
    path = tmp / f"c{rng.getrandbits(32)}.yaml"
    path.write_text(text if text is not None else _dump(data))
    load = _loader(kind)

    def go():
        try:
            load(str(path))
        finally:
            path.unlink()
    return f"{kind}:{mutation}", known_bad, go


# ----- safetensors checkpoints ------------------------------------------------------------------------

# w8 groups of 128 along hidden; 4 KV heads so the 4-core U280 design can split attention by KV head
MICRO = dict(hidden=128, inter=256, layers=1, heads=4, kv_heads=4, vocab=64, max_pos=128)
NANO = dict(hidden=16, inter=32, layers=2, heads=2, kv_heads=1, vocab=16, max_pos=32)       # header fuzzing


def write_micro_checkpoint(d: Path, seed: int = 0, sizes: Optional[dict] = None) -> Path:
    """A small Llama checkpoint written with the safetensors library itself (no transformers import)."""
    from safetensors.numpy import save_file
    m = sizes or MICRO
    hd = m["hidden"] // m["heads"]
    rng = np.random.default_rng(seed)
    shapes = {"model.embed_tokens.weight": (m["vocab"], m["hidden"]), "model.norm.weight": (m["hidden"],),
              "lm_head.weight": (m["vocab"], m["hidden"])}
    for i in range(m["layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (m["hidden"],),
                       p + "post_attention_layernorm.weight": (m["hidden"],),
                       p + "self_attn.q_proj.weight": (m["heads"] * hd, m["hidden"]),
                       p + "self_attn.k_proj.weight": (m["kv_heads"] * hd, m["hidden"]),
                       p + "self_attn.v_proj.weight": (m["kv_heads"] * hd, m["hidden"]),
                       p + "self_attn.o_proj.weight": (m["hidden"], m["heads"] * hd),
                       p + "mlp.gate_proj.weight": (m["inter"], m["hidden"]),
                       p + "mlp.up_proj.weight": (m["inter"], m["hidden"]),
                       p + "mlp.down_proj.weight": (m["hidden"], m["inter"])})
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) if len(s) == 2 else np.ones(s, np.float32)
               for k, s in shapes.items()}
    save_file(tensors, str(d / "model.safetensors"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": m["hidden"],
           "intermediate_size": m["inter"], "num_hidden_layers": m["layers"], "num_attention_heads": m["heads"],
           "num_key_value_heads": m["kv_heads"], "vocab_size": m["vocab"], "max_position_embeddings": m["max_pos"],
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu"}
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _split_safetensors(raw: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _join_safetensors(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def checkpoint_case(rng: random.Random, pristine: Path, work: Path) -> tuple[str, bool, Callable[[], Any]]:
    """Mutate the header or config.json of the micro checkpoint in ``work`` (restored from ``pristine``)."""
    from llmaccel.mapping.checkpoint import SafetensorsCheckpoint
    raw = (pristine / "model.safetensors").read_bytes()
    header, data = _split_safetensors(raw)
    cfg = json.loads((pristine / "config.json").read_text())
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    ent = header[name]
    mutation = rng.choice(["dtype", "unknown_dtype", "offset", "negative", "shape", "transpose", "drop", "extra",
                           "hlen", "header_bytes", "truncate", "config_layers", "config_hidden", "config_string",
                           "swap_ranges", "config_json_bytes"])
    new_raw: Optional[bytes] = None
    cfg_text: Optional[str] = None
    if mutation == "dtype":
        ent["dtype"] = rng.choice(["F16", "BF16", "F64", "I32", "I8", "U8", "BOOL"])
    elif mutation == "unknown_dtype":
        ent["dtype"] = junk_text(rng) or "Q4"
    elif mutation == "offset":
        delta = rng.choice([4, -4, 8, len(data), 1 << 40])
        ent["data_offsets"] = [ent["data_offsets"][0] + delta, ent["data_offsets"][1] + delta]
    elif mutation == "negative":
        ent["data_offsets"] = [-ent["data_offsets"][1], ent["data_offsets"][0] - 1]
    elif mutation == "shape":
        ent["shape"] = [s * 2 for s in ent["shape"]] if rng.random() < 0.5 else ent["shape"][:-1] + [1]
    elif mutation == "transpose":
        two_d = [k for k in names if len(header[k]["shape"]) == 2 and header[k]["shape"][0] != header[k]["shape"][1]]
        name = rng.choice(two_d)
        header[name]["shape"] = header[name]["shape"][::-1]
    elif mutation == "drop":
        del header[name]
    elif mutation == "extra":
        end = len(data)
        header["model.extra.weight"] = {"dtype": "F32", "shape": [4], "data_offsets": [end, end + 16]}
        data = data + bytes(16)
    elif mutation == "hlen":
        new_raw = struct.pack("<Q", rng.choice([0, 1, len(raw), 1 << 62])) + raw[8:]
    elif mutation == "header_bytes":
        n = struct.unpack("<Q", raw[:8])[0]
        hb = bytearray(raw[8:8 + n])
        for _ in range(rng.randint(1, 4)):
            hb[rng.randrange(len(hb))] = rng.getrandbits(8)
        new_raw = raw[:8] + bytes(hb) + raw[8 + n:]
        if bytes(hb) == raw[8:8 + n]:
            new_raw = None
    elif mutation == "truncate":
        new_raw = raw[:rng.randrange(len(raw))]
    elif mutation == "config_layers":
        cfg["num_hidden_layers"] = cfg["num_hidden_layers"] + rng.choice([1, 3])
    elif mutation == "config_hidden":
        cfg["hidden_size"] = cfg["hidden_size"] * 2
    elif mutation == "config_string":
        key = rng.choice(["hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size"])
        cfg[key] = str(cfg[key])
    elif mutation == "swap_ranges":
        a, b = rng.sample(names, 2)
        header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]
        la = header[a]["data_offsets"][1] - header[a]["data_offsets"][0]
        lb = header[b]["data_offsets"][1] - header[b]["data_offsets"][0]
        if la == lb:
            # two tensors of the same byte size swapped: still a well-formed file (the reader cannot know)
            mutation = "swap_same_size"
    elif mutation == "config_json_bytes":
        cfg_text = json.dumps(cfg)
        i = rng.randrange(len(cfg_text))
        cfg_text = cfg_text[:i] + rng.choice(["", "}", ",", "NaN", '"', "\x00", "\ud800"]) + cfg_text[i + 1:]
    known_bad = mutation not in ("header_bytes", "swap_same_size", "config_json_bytes", "dtype") or \
        (mutation == "dtype" and ent["dtype"] != "F32")
    if mutation == "header_bytes" and new_raw is None:
        known_bad = False
    if mutation == "config_json_bytes":
        known_bad = False
    body = new_raw if new_raw is not None else _join_safetensors(header, data)

    def go():
        (work / "model.safetensors").write_bytes(body)
        if cfg_text is not None:
            (work / "config.json").write_bytes(cfg_text.encode("utf-8", "surrogatepass"))
        else:
            (work / "config.json").write_text(json.dumps(cfg))
        ck = SafetensorsCheckpoint(work)
        for k in ck.keys():
            ck.get(k)
    return mutation, known_bad, go


# ----- artifact manifests -----------------------------------------------------------------------------

def _differs_outside_timings(raw: bytes, man: dict) -> bool:
    """A byte edit is known bad unless the JSON still parses to the same manifest (a space for a tab,
    a digit of the unhashed wall-clock ``timings``)."""
    try:
        edited = json.loads(raw)
    except ValueError:
        return True
    if not isinstance(edited, dict):
        return True
    strip = lambda d: {k: v for k, v in d.items() if k != "timings"}  # noqa: E731
    return strip(edited) != strip(man)


def manifest_case(rng: random.Random, pristine: Path, work: Path) -> tuple[str, bool, Callable[[], Any]]:
    """Mutate manifest.json of a compressed-model artifact; every semantic change must be refused."""
    from llmaccel.mapping.compress import load_compressed
    man = json.loads((pristine / "manifest.json").read_text())
    leaves = [(p, v) for p, v in _leaves(man) if p and p[0] != "timings"]
    mutation = rng.choice(["value", "type", "delete", "add", "files_path", "list", "bytes", "hash", "reorder"])
    text: Optional[str] = None
    raw: Optional[bytes] = None
    known_bad = True
    if mutation == "value" and leaves:
        p, v = rng.choice(leaves)
        if isinstance(v, bool):
            _set(man, p, not v)
        elif isinstance(v, (int, float)):
            _set(man, p, v + rng.choice([1, -1, 1000]) if isinstance(v, int) else v * 1.5 + 1e-6)
        elif isinstance(v, str):
            _set(man, p, v + rng.choice(["x", "0", "/.."]))
        else:
            _set(man, p, 1)
    elif mutation == "type" and leaves:
        p, v = rng.choice(leaves)
        _set(man, p, rng.choice([str(v), [v], {"v": v}]) if not isinstance(v, str) else rng.choice([1, None, [v]]))
    elif mutation == "delete":
        key = rng.choice(list(man))
        del man[key]
        known_bad = key != "timings"  # wall-clock timings are kept outside the hash, on purpose
        mutation = f"delete {key}"
    elif mutation == "add":
        man[f"extra_{rng.randrange(100)}"] = "x"
    elif mutation == "files_path":
        files = man.get("files") or {}
        if isinstance(files, dict) and files:
            k = rng.choice(list(files))
            files[rng.choice(["../" + k, "/etc/hostname", "../../../../etc/hostname", k + "/..", "./" + k])] = \
                files.pop(k)
    elif mutation == "list":
        text = json.dumps([man])
    elif mutation == "bytes":
        body = json.dumps(man).encode()
        i = rng.randrange(len(body))
        raw = body[:i] + bytes([rng.getrandbits(8)]) + body[i + 1:]
        known_bad = _differs_outside_timings(raw, man)
    elif mutation == "hash":
        if "content_hash" in man:
            man["content_hash"] = "0" * len(str(man["content_hash"]))
    elif mutation == "reorder":
        known_bad = False  # the same manifest with its keys in another order is the same manifest
        items = list(man.items())
        rng.shuffle(items)
        man = dict(items)
    body = raw if raw is not None else (text if text is not None else json.dumps(man)).encode()

    def go():
        (work / "manifest.json").write_bytes(body)
        load_compressed(work, verify=True)
    return mutation, known_bad, go


# ----- compiled artifacts: programs.bin (ISA words on disk), programs.json, placement.json, manifest ------

COMPILED_FILES = ("manifest.json", "programs.bin", "programs.json", "placement.json")


def compiled_case(rng: random.Random, pristine: Path, work: Path) -> tuple[str, bool, Callable[[], Any]]:
    """Edit one file of a compiled artifact; the integrity check must refuse every real change."""
    from llmaccel.host.artifact import load_artifact
    target = rng.choice(COMPILED_FILES)
    raw = (pristine / target).read_bytes()
    how = rng.choice(["flip", "byte", "truncate", "append", "swap_words"])
    new = bytearray(raw)
    if how == "flip" and new:
        i = rng.randrange(len(new))
        new[i] ^= 1 << rng.randrange(8)
    elif how == "byte" and new:
        new[rng.randrange(len(new))] = rng.getrandbits(8)
    elif how == "truncate":
        new = new[:rng.randrange(len(new) + 1)]
    elif how == "append":
        new += bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 4, 28])))
    elif how == "swap_words" and len(new) >= 8:
        i, j = (4 * rng.randrange(len(new) // 4) for _ in range(2))
        new[i:i + 4], new[j:j + 4] = new[j:j + 4], new[i:i + 4]
    new = bytes(new)
    known_bad = new != raw
    if target == "manifest.json" and known_bad:
        known_bad = _differs_outside_timings(new, json.loads(raw))
    # every other file is hashed byte for byte: any edit is a tamper, even one to equal JSON

    def go():
        (work / target).write_bytes(new)
        try:
            load_artifact(work)
        finally:
            (work / target).write_bytes(raw)
    return f"{target}:{how}", known_bad, go


# ----- CLI arguments ----------------------------------------------------------------------------------

@dataclass
class CliWorld:
    """Paths the CLI cases point at: hostile files, a micro checkpoint, scratch space."""

    tmp: Path
    checkpoint: Path
    files: dict[str, Path]


def make_cli_world(tmp: Path, checkpoint: Path) -> CliWorld:
    files = {}
    for name, body in {"empty.txt": b"", "binary.bin": bytes(range(256)) * 8, "latin1.txt": b"caf\xe9",
                       "nul.txt": b"a\x00b", "list.yaml": b"- 1\n- 2\n", "dup.yaml": b"name: a\nname: b\n",
                       "list.json": b"[1]", "afile": b"x"}.items():
        (tmp / name).write_bytes(body)
        files[name] = tmp / name
    (tmp / "adir").mkdir(exist_ok=True)
    files["adir"] = tmp / "adir"
    files["under_file"] = tmp / "afile" / "x.out"
    files["missing"] = tmp / "no" / "such" / "thing.yaml"
    return CliWorld(tmp, checkpoint, files)


def cli_case(rng: random.Random, w: CliWorld) -> tuple[str, bool, list[str]]:
    """One command line known to be bad, built from a valid cheap base plus one hostile change."""
    out = str(w.tmp / f"o{rng.getrandbits(40)}")
    sim = ["simulate", "--model", "tiny", "--max-len", "128", "--prefill", "8", "--decode", "2"]
    bases: list[tuple[list[str], dict[str, str]]] = [
        (sim, {"--prefill": "posint", "--decode": "nonneg", "--max-len": "posint", "--trace": "outfile",
               "--plot": "outfile", "--model": "spec", "--design": "spec", "--recipe": "spec"}),
        (["compile", "--model", "tiny", "--max-len", "128", "--no-storage-report", "--out", out],
         {"--max-len": "posint", "--model": "spec", "--design": "spec", "--recipe": "spec", "--out": "outdir"}),
        (["compress", "--model", str(w.checkpoint), "--recipe", "w8", "--out", out],
         {"--model": "ckpt", "--recipe": "spec", "--out": "outdir"}),
        (["compress", "--model", str(w.checkpoint), "--eval", "--recipes", "fp32", "--max-eval-tokens", "32"],
         {"--max-eval-tokens": "int2", "--eval-text": "textfile", "--recipes": "recipes", "--plot": "outfile"}),
        (["run", "--prompt", "hi", "--max-new-tokens", "1", "--artifact", str(w.files["adir"])],
         {"--max-new-tokens": "posint", "--temperature": "float", "--top-p": "float", "--artifact": "artifact"}),
        (["demo", "--max-new-tokens", "1"], {"--max-new-tokens": "posint", "--eval-tokens": "int2",
                                            "--design": "preset", "--project-model": "preset"}),
        (["presets", "--kind", "models"], {"--kind": "choice"}),
        (["presets", "--show", "tiny"], {"--show": "preset"}),
        (["hls", "emit", "--kernel", "list"], {"--kernel": "preset"}),
        (["hls", "report", str(w.files["adir"])], {}),
        (["rtl", "gen", "--out", out], {"--chain-len": "posint", "--nm": "nm", "--unit": "choice",
                                         "--cascade-groups": "posint"}),
        (["hls", "run", str(w.files["adir"]), "--steps", "csim"], {"--steps": "steps"}),
        (["rtl", "sim", "--rows", "1"], {"--rows": "count", "--gap-prob": "prob", "--stall-prob": "prob",
                                         "--chain-len": "posint", "--nm": "nm"}),
        (["rtl", "synth", "--unit", "decoder"], {"--bits": "bits", "--chain-len": "posint", "--nm": "nm",
                                                 "--group-size": "posint", "--k": "posint"}),
    ]
    inapplicable = [
        ["compress", "--model", str(w.checkpoint), "--recipe", "w8", "--out", out, "--plot", "p.png"],
        ["compress", "--model", str(w.checkpoint), "--recipe", "w8", "--out", out, "--max-eval-tokens", "8"],
        ["compress", "--model", str(w.checkpoint), "--eval", "--recipe", "w8"],
        ["run", "--prompt", "hi", "--xclbin", "a.xclbin"],
        ["run", "--prompt", "hi", "--top-k", "3"],
        ["run", "--prompt", "hi", "--tokenizer", str(w.checkpoint)],
        ["presets", "--show", "tiny", "--kind", "devices"],
        ["hls", "emit", "--kernel", "list", "--seed", "3"],
        ["rtl", "gen", "--out", out, "--asym"],
        ["rtl", "synth", "--unit", "decoder", "--cascade-groups", "2"],
    ]
    kind = rng.choice(["flag_value", "flag_value", "flag_value", "unknown_flag", "missing_value", "non_utf8",
                       "inapplicable", "junk_positional", "no_command"])
    if kind == "inapplicable":
        return kind, True, rng.choice(inapplicable) + ["--json"]
    if kind == "no_command":
        return kind, True, [rng.choice(["", "bogus", "-x", "--json", non_utf8(rng)])] + ["--json"]
    base, flags = bases[rng.randrange(len(bases))]
    argv = list(base)
    if kind == "unknown_flag":
        argv.insert(rng.randint(1, len(argv)), rng.choice(["--bogus", "--pre", "--outt", "-z", "--json=1"]))
    elif kind == "missing_value" and flags:
        argv.append(rng.choice(sorted(flags)))
    elif kind == "non_utf8":
        argv.append(rng.choice(sorted(flags)) if flags else "--bogus")
        argv.append(non_utf8(rng))
    elif kind == "junk_positional":
        argv.insert(rng.randint(1, len(argv)), rng.choice(["junk", "--", "-", "0"]) if rng.random() < 0.5
                    else junk_text(rng) or "x")
        if argv[0] in ("hls", "rtl") and len(argv) > 1 and argv[1] in ("report", "run"):
            argv = argv + ["extra"]
    elif flags:
        flag = rng.choice(sorted(flags))
        argv = _replace_flag(argv, flag, _bad_value(rng, flags[flag], w))
    else:
        argv.append("--bogus")
    return kind, True, argv + ["--json"]


def _replace_flag(argv: list[str], flag: str, value: str) -> list[str]:
    if flag in argv:
        i = argv.index(flag)
        return argv[:i + 1] + [value] + argv[i + 2:]
    return argv + [flag, value]


def _bad_value(rng: random.Random, kind: str, w: CliWorld) -> str:
    f = w.files
    table = {
        "posint": ["0", "-1", "1.5", "1e3", "", "x", "nan", "9" * 40, "0x10"],
        "nonneg": ["-1", "1.5", "", "x", "nan"],
        "count": ["0", "-1", "1.5", "", "x"],  # a count with no upper bound: a huge one is valid, only slow
        "int2": ["0", "1", "-3", "", "2.5", "x"],
        "float": ["nan", "inf", "-inf", "", "x", "1e999"],
        "outfile": [str(f["adir"]), str(f["under_file"]), ""],
        "outdir": [str(f["afile"]), str(f["under_file"]), "", ".", "..", "/"],
        "spec": [str(f[k]) for k in ("empty.txt", "binary.bin", "latin1.txt", "list.yaml", "dup.yaml", "missing",
                                     "list.json", "adir")] + ["", "bogus", "x.yaml"],
        "ckpt": [str(f[k]) for k in ("afile", "adir", "missing", "empty.txt")] + [""],
        "textfile": [str(f[k]) for k in ("empty.txt", "binary.bin", "latin1.txt", "nul.txt", "adir", "missing")],
        "recipes": ["", ",", "fp32,,w8", "bogus", " "],
        "artifact": [str(f[k]) for k in ("afile", "adir", "missing", "empty.txt")] + [""],
        "preset": ["bogus", "", "../designs/x", str(f["binary.bin"])],
        "choice": ["bogus", "", "ALL"],
        "nm": ["a:b", "2:0", "0:0", "16:2", "3:4", "", "2:4:8"],
        "steps": [",,,", "synth", "", "csim,bogus", "CSIM"],
        "prob": ["1", "-0.1", "nan", "inf", "x", "", "1.5"],
        "bits": ["0", "1", "5", "7", "16", "-4", "x", ""],
    }
    return rng.choice(table[kind])


def run_cli(argv: list[str], limit_s: float = 0.0) -> tuple[str, str]:
    """Run ``main(argv)`` in-process; judge exit code and the one-JSON-object rule."""
    from llmaccel.cli import main
    out, err = io.StringIO(), io.StringIO()
    try:
        with time_limit(limit_s), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(argv))
    except CaseTimeout:
        return "timeout", f"over {limit_s} s"
    except BaseException as exc:  # noqa: BLE001 - SystemExit or anything that escaped main
        return "crash", f"{type(exc).__name__} escaped main: {exc}"
    text = out.getvalue()
    as_json = "--json" in (argv[:argv.index("--")] if "--" in argv else argv)  # after "--" it is data
    if as_json:
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError:
            return "crash", f"exit {rc}: stdout is not one JSON object: {text[:200]!r}"
    if "Traceback (most recent call last)" in err.getvalue():
        return "crash", f"exit {rc}: traceback on stderr"
    if rc == 0:
        return "ok", ""
    if rc == 2:
        return "refused", (json.loads(text).get("error", "") if as_json else err.getvalue())[:200]
    return "crash", f"exit {rc}: {text or err.getvalue()}"[:300]


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_tree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


# ----- the driver shared by the suite and the benchmark -----------------------------------------------

FORMATS = ("isa", "yaml", "checkpoint", "manifest", "compiled", "cli")


def fuzz(counts: dict[str, int], seed: int, cli_limit_s: float = 30.0,
         progress: Optional[Callable[[int], None]] = None) -> Tally:
    """Run ``counts[fmt]`` seeded cases of each format; every case is judged, nothing is skipped."""
    tally = Tally()
    root = scratch_dir("llmaccel-fuzz-")
    try:
        pristine = write_micro_checkpoint(root / "ckpt")
        nano = write_micro_checkpoint(root / "nano", sizes=NANO)
        work = root / "nano-work"
        shutil.copytree(nano, work)
        for fmt in FORMATS:
            n = counts.get(fmt, 0)
            if not n:
                continue
            rng = random.Random(f"{seed}:{fmt}")  # one stream per format: adding cases to one leaves the others
            if fmt == "isa":
                for _ in range(n):
                    kind, bad, fn = isa_case(rng)
                    tally.add(fmt, *judge(fn, bad), case=kind)
                    progress and progress(1)
            elif fmt == "yaml":
                bases = yaml_bases()
                tmp = root / "yaml"
                tmp.mkdir()
                for _ in range(n):
                    kind, bad, fn = yaml_case(rng, tmp, bases)
                    tally.add(fmt, *judge(fn, bad), case=kind)
                    progress and progress(1)
            elif fmt == "checkpoint":
                for _ in range(n):
                    kind, bad, fn = checkpoint_case(rng, nano, work)
                    tally.add(fmt, *judge(fn, bad), case=kind)
                    progress and progress(1)
            elif fmt == "manifest":
                from llmaccel.mapping.compress import compress_checkpoint
                from llmaccel.mapping.recipe import get_recipe
                art = root / "compressed"
                compress_checkpoint(pristine, get_recipe("w8"), art)
                mwork = root / "compressed-work"
                shutil.copytree(art, mwork)
                for _ in range(n):
                    kind, bad, fn = manifest_case(rng, art, mwork)
                    tally.add(fmt, *judge(fn, bad), case=kind)
                    progress and progress(1)
            elif fmt == "compiled":
                from llmaccel.host.artifact import compile_artifact
                from llmaccel.mapping.compress import compress_checkpoint
                from llmaccel.mapping.recipe import get_recipe
                cm = root / "compiled-src"
                compress_checkpoint(pristine, get_recipe("w8"), cm)
                art = compile_artifact(cm, root / "compiled", "flightllm-u280", 128)
                cwork = root / "compiled-work"
                shutil.copytree(art, cwork)
                for _ in range(n):
                    kind, bad, fn = compiled_case(rng, art, cwork)
                    tally.add(fmt, *judge(fn, bad), case=kind)
                    progress and progress(1)
            elif fmt == "cli":
                cli_tmp = root / "cli"
                cli_tmp.mkdir()
                world = make_cli_world(cli_tmp, pristine)
                for _ in range(n):
                    kind, bad, argv = cli_case(rng, world)
                    with contextlib.chdir(cli_tmp):  # a relative path a case writes lands in scratch space
                        outcome, detail = run_cli(argv, cli_limit_s)
                    if outcome == "ok" and bad:
                        outcome, detail = "silent", "exit 0"
                    tally.add(fmt, outcome, detail, case=argv)
                    progress and progress(1)
    finally:
        remove_tree(root)
    return tally
