"""Former name of :mod:`mapping.layer_math` (the layer math is no longer Llama-only); same objects."""
from llmaccel.mapping.layer_math import (ModelSpec, activation, apply_rope, causal_softmax, fp32_attention,  # noqa: F401
                                inv_freq, norm, rmsnorm, rope_cos_sin, rotate_half, shape_from_config)
