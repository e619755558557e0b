"""The gpu backend of host.Session: the whole compressed model through the Triton kernels.

On CPU the same code runs under Triton's interpreter on CPU tensors (two
decoder layers of the bundled model, a few tokens: the interpreter is slow);
on a CUDA machine the GPU-marked tests run the whole bundled model compiled,
with the decode step as a CUDA graph.
"""
import dataclasses

import pytest
import torch

from triton_cases import kernel_device, requires_cuda
from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton_model import MemoryNeed, ModelTooLargeError, TritonModel, check_fits
from llmaccel.host.artifact import compile_in_memory
from llmaccel.host.errors import BackendUnavailable
from llmaccel.host.session import Session
from llmaccel.assets import bundled_model_dir
from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import LayerRule, Recipe, get_recipe

PROMPT = [5, 17, 99, 300, 12, 7]
# Per-layer mixed formats: 3-bit asymmetric attention (codes straddle words), 4-bit 8:16 MLP (FlightLLM's
# N:M; the FPGA design the session's artifact is compiled for has M=16 only), INT8 LM head.
MIXED = Recipe("gpu-test-mixed", attn=LayerRule(bits=3, group_size=128, symmetric=False),
               mlp=LayerRule(bits=4, group_size=128, nm=(8, 16), prune_method="magnitude"),
               act_bits=8, kv_bits=8, lm_head_bits=8)


def _truncate(cm, layers: int):
    keep = lambda k: not k.startswith("layers.") or int(k.split(".")[1]) < layers
    return dataclasses.replace(cm, config=dict(cm.config, num_hidden_layers=layers),
                               linears={k: v for k, v in cm.linears.items() if keep(k)},
                               tensors={k: v for k, v in cm.tensors.items() if keep(k)})


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-backend") / "mixed"
    compress_checkpoint(bundled_model_dir(), MIXED, out)
    cm = load_compressed(out)
    return cm if torch.cuda.is_available() else _truncate(cm, 2)


def test_session_on_the_gpu_backend_generates_the_reference_tokens(mixed_model):
    cm = mixed_model
    formats = {(w.fmt.bits, w.fmt.nm, w.fmt.symmetric) for w in cm.linears.values()}
    assert formats == {(3, None, False), (4, (8, 16), True), (8, None, True)}, "mixed formats expected"
    n = 4
    ref = ReferenceModel.from_compressed(cm)
    want = list(ref.generate_greedy(PROMPT, n))
    sess = Session(compile_in_memory(cm, max_len=128), backend="gpu", device=str(kernel_device()))
    got = sess.generate(PROMPT, n)
    assert got["token_ids"] == want
    assert got["stats"]["backend"] == "gpu" and got["stats"]["generated_tokens"] == n
    # the last decode step's logits within the contract's decode bound (2e-2 of the max logit)
    ref_logits, cache = ref.prefill(PROMPT, 16)
    for tok in want[:-1]:
        ref_logits = ref.forward(torch.tensor([tok]), cache)
    logits = torch.from_numpy(sess.logits)
    assert float((logits - ref_logits[-1]).abs().max()) <= 2e-2 * float(ref_logits[-1].abs().max())


def test_decode_before_prefill_and_a_full_cache_are_clear_errors(mixed_model):
    m = TritonModel.from_compressed(mixed_model, kernel_device(), max_len=2)
    with pytest.raises(Exception, match="decode before prefill"):
        m.decode(3)
    with pytest.raises(Exception, match=r"allowed: 1..max_len=2"):
        m.prefill([1, 2, 3])


def test_recipes_the_kernels_cannot_run_are_one_clear_error(tmp_path):
    compress_checkpoint(bundled_model_dir(), get_recipe("fp32"), tmp_path / "fp32")
    cm = load_compressed(tmp_path / "fp32")
    with pytest.raises(KernelFormatError, match=r"INT8 KV cache; allowed: recipes with kv_bits=8"):
        TritonModel.from_compressed(cm, "cpu")
    cm8 = dataclasses.replace(cm, recipe=dataclasses.replace(cm.recipe, kv_bits=8, act_bits=8))
    with pytest.raises(KernelFormatError, match=r"layer 'layers.0.self_attn.q_proj' .* is FP32, not packed"):
        TritonModel.from_compressed(cm8, "cpu")


def test_a_model_that_does_not_fit_names_its_parts_and_the_free_memory():
    need = MemoryNeed(weights=3 * 2 ** 30, embed=2 ** 28, kv_cache=2 ** 30, workspace=2 ** 29)
    check_fits(need, need.total, "cuda:0", 2048)          # exactly fits: no error
    with pytest.raises(ModelTooLargeError, match=r"needs 4.75 GiB .*packed weights 3.00 GiB.*max_len=2048 1.00 GiB"
                                                 r".* but 4.00 GiB are free"):
        check_fits(need, 4 * 2 ** 30, "cuda:0", 2048)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_backend_gpu_without_cuda_is_one_clear_error(mixed_model, monkeypatch):
    art = compile_in_memory(mixed_model, max_len=128)
    with pytest.raises(BackendUnavailable, match=r"needs a CUDA device, but torch.cuda.is_available\(\) is False"):
        Session(art, backend="gpu")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(BackendUnavailable, match=r"device='cpu' needs TRITON_INTERPRET=1"):
        Session(art, backend="gpu", device="cpu")


@pytest.mark.gpu
@requires_cuda
def test_cuda_graph_decode_equals_eager_decode(mixed_model):
    eager = TritonModel.from_compressed(mixed_model, "cuda", max_len=64)
    sess = Session(compile_in_memory(mixed_model, max_len=128), backend="gpu")
    assert sess.backend.graph is not None
    toks = sess.generate(PROMPT, 16)["token_ids"]
    logits = eager.prefill(PROMPT)
    mine = [int(logits[-1].argmax())]
    for _ in range(15):
        mine.append(int(eager.decode(mine[-1])[-1].argmax()))
    assert toks == mine


@pytest.mark.gpu
@requires_cuda
def test_the_bundled_w4_model_on_cuda_generates_the_reference_tokens(tmp_path):
    compress_checkpoint(bundled_model_dir(), get_recipe("w4-g128-rtn"), tmp_path / "w4")
    cm = load_compressed(tmp_path / "w4")
    want = list(ReferenceModel.from_compressed(cm).generate_greedy(PROMPT, 32))
    got = Session(compile_in_memory(cm, max_len=128), backend="gpu").generate(PROMPT, 32)["token_ids"]
    assert got == want


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_cli_run_backend_gpu_without_cuda_exits_2_with_one_line(capsys):
    from llmaccel.cli import main
    assert main(["run", "--prompt", "hello", "--backend", "gpu", "--json"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "backend 'gpu' needs a CUDA device" in out[0]


def test_weight_only_fp16_activations_stay_close_to_the_fp32_activation_reference(mixed_model):
    """activations='fp16' (W-only quantization, as GPU users run it) against the reference with FP32 activations.

    Measured on the bundled model's first two layers (interpreter): 8.3e-4 (prefill) and 4.5e-4 (decode)
    of the max logit. FP16 rounds every activation and every decoded weight by up to 2**-11 = 4.9e-4
    relative, and those errors pass through the layers; 4e-3 leaves a 5x margin over the measurement.
    """
    from llmaccel.gpu_baseline.reference import Linear
    cm = mixed_model
    base, cpu = ReferenceModel.from_compressed(cm), torch.device("cpu")
    ref = ReferenceModel(cm.shape, base.embed, base.norms, {k: Linear(w, False, cpu) for k, w in cm.linears.items()},
                         act_int8=False, kv_int8=True, device=cpu, name="weight-only")
    m = TritonModel.from_compressed(cm, kernel_device(), 16, activations="fp16")
    want, cache = ref.prefill(PROMPT, 16)
    got = m.prefill(PROMPT).cpu()
    assert float((got - want).abs().max()) <= 4e-3 * float(want.abs().max())
    tok = int(want[-1].argmax())
    want, got = ref.forward(torch.tensor([tok]), cache), m.decode(tok).cpu()   # the FP16 GEMV path
    assert float((got - want).abs().max()) <= 4e-3 * float(want.abs().max())
