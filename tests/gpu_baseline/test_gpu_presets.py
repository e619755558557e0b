"""GPU device presets: the datasheet figures the GPU model needs, each with a source."""
import pytest

from llmaccel.gpu_baseline.measured import _NVML_NAMES
from llmaccel.simulator.specs.device import GpuDevice, list_devices, load_device

GPUS = [n for n in list_devices() if load_device(n).kind == "gpu"]


def test_the_gpus_a_lent_machine_may_have_are_presets():
    from llmaccel.gpu_baseline.perf_model import gpu_presets
    assert gpu_presets() == GPUS
    assert {"a100-sxm-80gb", "a100-pcie-40gb", "h100-sxm-80gb", "h200-sxm-141gb", "v100s-pcie-32gb"} <= set(GPUS)


@pytest.mark.parametrize("name", GPUS)
def test_gpu_preset_has_what_the_model_needs_with_sources(name):
    dev = load_device(name)
    assert isinstance(dev, GpuDevice)
    for field in ("memory_GB", "hbm_GBps", "fp16_tensor_TFLOPS_dense", "tdp_W"):
        assert getattr(dev, field), (name, field)
        src = dev.source_of(field)
        assert "NVIDIA" in src or "product name" in src, (name, field, src)


# Dense peaks are half the datasheets' starred (2:4 sparsity) figures: H100/H200 SXM FP16 1,979 -> 989,
# INT8 3,958 -> 1979; A100 FP16 624 -> 312, INT8 1,248 -> 624. Bandwidths as the datasheets print them.
@pytest.mark.parametrize("name, GBps, fp16, int8, tdp, mem", [
    ("h200-sxm-141gb", 4800, 1979 // 2, 3958 // 2, 700, 141),
    ("h100-sxm-80gb", 3350, 1979 // 2, 3958 // 2, 700, 80),
    ("a100-sxm-80gb", 2039, 624 // 2, 1248 // 2, 400, 80),
    ("a100-pcie-40gb", 1555, 624 // 2, 1248 // 2, 250, 40),
    ("v100s-pcie-32gb", 1134, 130, None, 250, 32),
])
def test_datasheet_figures(name, GBps, fp16, int8, tdp, mem):
    d = load_device(name)
    assert (d.hbm_GBps, d.fp16_tensor_TFLOPS_dense, d.int8_TOPS_dense, d.tdp_W, d.memory_GB) == (
        GBps, fp16, int8, tdp, mem)


def test_nvml_name_map_points_at_gpu_presets():
    for _, preset in _NVML_NAMES:
        assert preset is None or preset in GPUS
