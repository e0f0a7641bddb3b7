"""Typical wrong answers to the exercises of lessons/11_spline_flows.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: ["24", "25", "16"],
    2: [
        # no floor on the widths
        "np.concatenate([[-2.0], -2.0 + np.cumsum(4.0 * np.exp(EX2['logits']) / np.exp(EX2['logits']).sum())])",
        "knots(EX2['logits'], 2.0, 1e-3) + 2.0",  # cumulative sums from 0, not from -B
    ],
    3: [
        "lambda s, d0, d1: s",  # the mean slope
        "lambda s, d0, d1: (d0 + d1) / 2",  # the mean of the end slopes
        "lambda s, d0, d1: s**2 / (d0 + d1 + 2 * s)",  # a factor 4 lost
    ],
}
