"""The toolkit's one error type for bad input.

It lives in the lowest package so that every layer (formats, simulator,
mapping, host, CLI) raises the same class; the CLI turns it into one line
(or one JSON object) and a non-zero exit, never a traceback.
"""


class LlmaccelError(ValueError):
    """Bad input: the message names the field and what is allowed."""
