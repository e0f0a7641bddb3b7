"""Typical wrong answers to the exercises of lessons/03_backprop_by_hand.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda ds, tanh_s: ds * tanh_s",  # no sum over the batch
        "lambda ds, tanh_s: ds.sum(axis=0)",  # forgot ds/dscale = tanh
    ],
    2: [
        "lambda dx_b, x_b, dlogdet: -dx_b * x_b",  # no log-det term
        "lambda dx_b, x_b, dlogdet: -dx_b * x_b + dlogdet[:, None]",  # log-det sign
        "lambda dx_b, x_b, dlogdet: dx_b * x_b - dlogdet[:, None]",  # first-term sign
    ],
    3: [
        "lambda dz_b, dlogdet, x_b, h: dz_b * x_b * _sigmoid(h + 2) * (1 - _sigmoid(h + 2))",  # no log-det
        "lambda dz_b, dlogdet, x_b, h: (dz_b * x_b + dlogdet[:, None]) * _sigmoid(h + 2) * (1 - _sigmoid(h + 2))",
    ],
}
