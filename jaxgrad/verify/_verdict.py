"""The one verdict vocabulary of every check."""

from __future__ import annotations

import enum


class Verdict(str, enum.Enum):
    """The one vocabulary of every check: `compare`, `check_grad`, `taylor_test` and the command line."""

    OK = "OK"
    """The gradient agrees with the numeric one (within tolerance), or the Taylor remainder shrinks like t²."""
    INCONCLUSIVE = "INCONCLUSIVE"
    """No disagreement was found, but the check could not have seen one at too many points."""
    MISMATCH = "MISMATCH"
    """The gradient is wrong somewhere."""

    def __str__(self) -> str:
        return self.value
