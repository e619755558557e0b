"""The simulator backend: the functional engine executes the artifact's stored programs, the timing engine times them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from llmaccel.simulator.functional import ModelWeights
from llmaccel.simulator.functional_model import FunctionalModel
from llmaccel.simulator.power import PowerModel
from llmaccel.simulator.timing import Work


@dataclass
class StepOutcome:
    """Logits of the step's last token plus what the step cost (simulated on this backend)."""

    logits: np.ndarray
    seconds: Optional[float]          # simulated device seconds (None where not known)
    energy_J: Optional[float]
    work: Optional[Work] = None
    instructions: int = 0


class SimulatorBackend:
    name = "simulator"
    simulated = True

    def __init__(self, artifact: Any):
        self.artifact = artifact
        self.model = FunctionalModel(artifact.model, ModelWeights.from_compressed(artifact.compressed))
        self.power = PowerModel.build(artifact.design, artifact.device)

    @property
    def length(self) -> int:
        return self.model.length

    @property
    def max_len(self) -> int:
        return self.model.max_len

    def _outcome(self, st) -> StepOutcome:
        e = self.power.phase(st.work, st.seconds).total_J
        return StepOutcome(st.logits, st.seconds, e, st.work, st.instructions)

    def prefill(self, ids: list[int]) -> StepOutcome:
        return self._outcome(self.model.prefill(ids))

    def decode(self, token: int) -> StepOutcome:
        return self._outcome(self.model.decode(token))

    def reset(self) -> None:
        self.model.reset()
