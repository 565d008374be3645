"""Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`), exactly as k8s.io/apimachinery/pkg/api/resource.

Values are kept as Fractions so `Value()` and `MilliValue()` round up the way the Go type does
(`ScaledValue` rounds away from zero); the downward API and the cgroup limits are derived from them.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exponent>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


class QuantityError(ValueError):
    pass


def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string; QuantityError when the Go parser would reject it."""
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity (expected e.g. 500m, 2, 1.5Gi, 1e3)")
    value = Fraction(match["number"] if not match["number"].endswith(".") else match["number"][:-1])
    if match["binary"]:
        value *= _BINARY[match["binary"]]
    elif match["exponent"]:
        value *= Fraction(10) ** int(match["exponent"][1:])
    else:
        value *= _DECIMAL[match["decimal"] or ""]
    return -value if match["sign"] == "-" else value


def value(quantity: Fraction) -> int:
    """`Quantity.Value()`: whole units, rounded up (away from zero)."""
    return math.ceil(quantity) if quantity >= 0 else math.floor(quantity)


def milli_value(quantity: Fraction) -> int:
    """`Quantity.MilliValue()`: thousandths, rounded up (away from zero)."""
    return value(quantity * 1000)
