"""How sure a match is, from the signals that found it, as a probability of being right."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class ConfidenceFit:
    """A logistic fit of "the top entry is right" for one embedding model.

    Its inputs are the entry's word-level confidence, its cosine with the message,
    how far that cosine leads the best other entry's, and whether the entry is the
    nearest by its whole text and by its nearest way of asking alike (1 or 0). Two
    readings of an entry that point to it together are seldom wrong; one alone often
    is. They do not depend on ``semantic_weight``; the cosines do depend on the model,
    so a fit belongs to one.
    """

    lexical: float
    cosine: float
    lead: float
    bias: float
    agreement: float = 0.0

    def __call__(self, lexical: float, cosine: float, lead: float, agreement: float = 0.0) -> float:
        return 1.0 / (1.0 + math.exp(-self.log_odds(lexical, cosine, lead, agreement)))

    def log_odds(self, lexical: float, cosine: float, lead: float, agreement: float = 0.0) -> float:
        """The fit before the logistic: what a further input's weight is added to."""
        z = self.lexical * lexical + self.cosine * cosine + self.lead * lead + self.bias
        return z + self.agreement * agreement
