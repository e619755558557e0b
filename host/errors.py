"""Errors of the host driver (all are LlmaccelError: one clear line at the CLI)."""
from __future__ import annotations

from llmaccel.errors import LlmaccelError


class SessionError(LlmaccelError):
    """A request the session cannot serve (bad prompt, bad sampling parameters, beyond the compiled length)."""


class BackendUnavailable(LlmaccelError):
    """A backend whose runtime or hardware is missing on this machine."""
