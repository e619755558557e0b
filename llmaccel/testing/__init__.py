"""Helpers for llmaccel's own tests (tiny random checkpoints built with transformers)."""
