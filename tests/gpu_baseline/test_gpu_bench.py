"""gpu-bench: clear errors without a GPU or NVML; synthetic packed layers are valid packed data; on CUDA a full small run."""
import sys

import numpy as np
import pytest
import torch

from triton_cases import requires_cuda
from llmaccel.gpu_baseline.nvml import Nvml, NvmlUnavailable
from llmaccel.gpu_baseline.synthetic import synthetic_packed
from llmaccel.gpu_baseline.triton.linear import int8_linear
from llmaccel.simulator.golden.linear import group_partial_sums, rescale_groups
from llmaccel.sparse_dsp.packed_format import LayerFormat, PackedLinear

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")


@no_cuda
def test_gpu_bench_without_cuda_exits_2_with_one_line(capsys):
    from llmaccel.cli import main
    assert main(["gpu-bench", "--json"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "gpu-bench needs a CUDA GPU" in out[0]


@no_cuda
def test_nvml_absent_is_one_clear_error(monkeypatch):
    with pytest.raises(NvmlUnavailable, match=r"NVML absent: .*libnvidia-ml"):
        Nvml.open(0)                         # nvidia-ml-py is installed, the driver's library is not
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NvmlUnavailable, match=r"nvidia-ml-py package is not installed"):
        Nvml.open(0)


@pytest.mark.parametrize("fmt", [LayerFormat(40, 256, 3, 64, False, (4, 8)), LayerFormat(24, 256, 4, 128, True, (2, 16)),
                                 LayerFormat(24, 128, 4, 128, True, None)], ids=["w3a-4of8", "w4s-2of16", "w4s-dense"])
def test_synthetic_layers_are_valid_packed_data_the_kernels_read(fmt, device):
    layer = synthetic_packed(fmt, device, torch.Generator(device=device).manual_seed(1), np.random.default_rng(1))
    arr = lambda t: t.cpu().numpy()
    p = PackedLinear(fmt, arr(layer.codes).view(np.uint32)[:, :fmt.code_words_per_row],
                     arr(layer.indices).view(np.uint32)[:, :fmt.index_words_per_row], arr(layer.scales),
                     None if layer.zeros is None else arr(layer.zeros))
    if fmt.nm:   # N distinct ascending positions in every block of M: what a packer would write
        n, m = fmt.nm
        pos = p.unpack_indices().reshape(fmt.out_features, -1, n).astype(int)
        assert (np.diff(pos, axis=2) > 0).all() and pos.max() < m
    q = np.random.default_rng(2).integers(-127, 128, (1, fmt.in_features)).astype(np.int8)
    s = np.array([0.01], np.float32)
    y = int8_linear(layer, torch.from_numpy(q).to(device), torch.from_numpy(s).to(device)).cpu().numpy()
    gold = rescale_groups(group_partial_sums(p.dense_int8(), q, fmt.group_size), p.scales, s)
    assert np.array_equal(y.view(np.uint32), gold.view(np.uint32))
    assert np.isfinite(gold).all()


@pytest.mark.gpu
@requires_cuda
def test_a_small_gpu_bench_run_writes_a_valid_measurement(tmp_path):
    from llmaccel.gpu_baseline.bench import BenchConfig, run_gpu_bench
    from llmaccel.gpu_baseline.measured import parse_measurement, write_measurement
    cfg = BenchConfig(model="tiny", recipe="w4-g128-rtn", prefill=16, decode=8, repeats=2, gemv_shapes=((512, 512),),
                      gemv_block_o=(32,), gemv_groups_per_iter=(1, 4), include_hf=False, bundled_tokens=8, copy_bytes=1 << 26, idle_seconds=0.5,
                      command="pytest")
    m = run_gpu_bench(cfg, lambda s: None)
    back = parse_measurement(write_measurement(m, tmp_path / "m.json"))
    assert {r.phase for r in back.runs} == {"prefill", "decode"} and back.copy_bandwidth.GBps > 0
    assert any("equal the PyTorch reference" in n for n in back.notes)
