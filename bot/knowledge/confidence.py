"""How sure a match is, from the signals that found it, as a probability of being right."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class ConfidenceFit:
    """A logistic fit of "the top entry is right" for one embedding model.

    Its inputs are the entry's word-level confidence, its cosine with the message,
    and how far that cosine leads the best other entry's. They do not depend on
    ``semantic_weight``; the cosines do depend on the model, so a fit belongs to one.
    """

    lexical: float
    cosine: float
    lead: float
    bias: float

    def __call__(self, lexical: float, cosine: float, lead: float) -> float:
        z = self.lexical * lexical + self.cosine * cosine + self.lead * lead + self.bias
        return 1.0 / (1.0 + math.exp(-z))
