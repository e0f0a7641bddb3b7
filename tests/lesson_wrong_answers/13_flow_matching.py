"""Typical wrong answers to the exercises of lessons/13_flow_matching.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda x0, x1, t: (t[:, None] * x0 + (1 - t)[:, None] * x1, x1 - x0)",  # the two ends swapped
        "lambda x0, x1, t: ((1 - t)[:, None] * x0 + t[:, None] * x1, x0 - x1)",  # the sign of the target velocity
        "lambda x0, x1, t: ((1 - t)[:, None] * x0 + t[:, None] * x1, x1)",  # the data as the target
    ],
    2: ["np.trace(A_EX2)", "-np.linalg.det(A_EX2)", "0.0"],  # sign; determinant for trace; no change
    3: ["0.08 / 256", "0.08 / 16", "0.08"],  # RK4's order; second order; no change
}
