"""The compiler also takes a real compressed model: its PackedLinear formats drive placement and timing."""
import torch
from pathlib import Path

from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import get_recipe
from llmaccel.mapping.sim_api import build_compiler, simulate
from llmaccel.simulator.specs.model import load_model_spec

TINY = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")


def test_compressed_model_compiles_like_its_recipe(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    spec = load_model_spec("tiny-mha")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**spec.to_hf_config())).save_pretrained(tmp_path / "ckpt")
    compress_checkpoint(tmp_path / "ckpt", get_recipe("w4-g128-rtn"), tmp_path / "cm")
    cm = load_compressed(tmp_path / "cm")
    comp, _, _ = build_compiler(cm, TINY, max_len=256)
    ref, _, _ = build_compiler(spec, TINY, "w4-g128-rtn", max_len=256)
    # the packed formats read off the artifact are the recipe's formats for these shapes
    assert comp.f.layers == ref.f.layers and comp.f.source == "compressed"
    assert comp.f.weight_bytes == sum(w.fmt.total_bytes for k, w in cm.linears.items())
    r = simulate(cm, TINY, None, prefill=32, decode=8, max_len=256)
    assert r.decode_tokens_per_s > 0 and r.weight_bytes == comp.f.weight_bytes
