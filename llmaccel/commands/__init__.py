"""One module per `llmaccel` subcommand.

A module here defines ``NAME`` (the subcommand), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> dict``. The returned dict is what
``--json`` prints; ``run`` prints its own human-readable output when
``args.json`` is false. Modules are discovered, so adding a subcommand never
touches another module.
"""
