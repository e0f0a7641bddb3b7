"""Argument checks shared by every room of minflow (the ground floor: it imports nothing from minflow).

A bad count or rate gets the same clear message wherever it is passed:
``data/``, ``model.py``, ``train.py`` and the commands call these at their
public boundary.
"""

import math
import numbers

__all__ = ["check_positive_float", "check_positive_int", "require_rng"]


def check_positive_int(value, name):
    """``value`` as an int >= 1; TypeError if it is not a number, ValueError if not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive integer; got {type(value).__name__} {value!r}.")
    if not (math.isfinite(value) and float(value).is_integer() and value >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def check_positive_float(value, name):
    """``value`` as a float > 0 and finite; TypeError if not a number, ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__} {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
    return float(value)


def require_rng(rng, owner):
    """``rng``, or a TypeError saying how to pass one: random initial values come from a generator the caller owns."""
    if rng is None:
        raise TypeError(
            f"{owner} draws random initial values and needs a generator: pass "
            "rng=minflow.backend.make_rng(seed) (or numpy.random.default_rng(seed)), one generator for all layers."
        )
    return rng
