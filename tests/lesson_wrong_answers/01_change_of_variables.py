"""Typical wrong answers to the exercises of lessons/01_change_of_variables.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda x: -0.5 * np.arcsinh(x) ** 2 - 0.5 * math.log(2 * math.pi)",  # no log-det
        "lambda x: -0.5 * np.arcsinh(x) ** 2 - 0.5 * math.log(2 * math.pi) + 0.5 * np.log1p(x**2)",  # sign
    ],
    2: [
        "-1 / 9 - math.log(2 * math.pi)",  # no log-det
        "-1 / 9 - math.log(2 * math.pi) + math.log(3)",  # log-det of the wrong direction
        "-1.0 - math.log(2 * math.pi) - math.log(3)",  # log N evaluated at x
    ],
    3: [
        "lambda z: np.log1p(3 * (z**2).sum(axis=1) / 4)",  # radial stretch only
        "lambda z: np.log1p((z**2).sum(axis=1) / 4) + np.log1p(3 * (z**2).sum(axis=1) / 4) + np.log(1.3)",
    ],
}
