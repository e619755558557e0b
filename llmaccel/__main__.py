"""`python -m llmaccel ...` is the same as the `llmaccel` command."""
import sys

from llmaccel.cli import main

sys.exit(main())
