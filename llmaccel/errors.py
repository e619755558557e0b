"""The toolkit's one error type for bad input.

Every layer (formats, simulator, mapping, host, CLI) raises this class or a subclass; the CLI
turns it into one line (or one JSON object) and a non-zero exit, never a traceback. It lives at
the top of the ``llmaccel`` namespace, in a module that imports nothing, so the lowest package
(``llmaccel.sparse_dsp``) can use it without importing anything above itself.
"""


class LlmaccelError(ValueError):
    """Bad input: the message names the field and what is allowed."""
