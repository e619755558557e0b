"""ISA placeholder (filled in by the ISA commit)."""
LINE_BYTES = 64
BUFFER_ID_BITS = 3
OFFSET_BITS = 16
MAX_BUFFERS_PER_CORE = 1 << BUFFER_ID_BITS
MAX_BUFFER_BYTES = LINE_BYTES << OFFSET_BITS
MISC_OPS = ("softmax", "rmsnorm", "layernorm", "silu", "add", "mul", "rope", "quantize")
