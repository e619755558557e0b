"""llmaccel: co-design FPGA accelerators for LLM inference."""
__version__ = "0.1.0"
