"""Typed, validated specs loaded from YAML presets: models, devices (and, in simulator.design, designs)."""
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.simulator.specs.device import (Device, FpgaDevice, GpuDevice, list_devices, load_device,
                                    sourced_facts)
from llmaccel.simulator.specs.model import ModelSpec, list_models, load_model_spec, model_spec_from_hf_config

__all__ = ["SpecError", "Device", "FpgaDevice", "GpuDevice", "list_devices", "load_device", "sourced_facts",
           "ModelSpec", "list_models", "load_model_spec", "model_spec_from_hf_config"]
