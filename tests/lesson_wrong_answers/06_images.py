"""Typical wrong answers to the exercises of lessons/06_images.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "-60 / (64 * math.log(2))",  # no bin width
        "-(60 - 64 * math.log(17)) / 64",  # nats, not bits
        "-(60 + 64 * math.log(17)) / (64 * math.log(2))",  # sign of D ln k
    ],
    2: ["(1, 1, 1)", "(2, 3, 2)"],
    3: [
        "lambda v, a: -(np.log(a + (1 - 2 * a) * v) + np.log1p(-(a + (1 - 2 * a) * v))).sum(axis=(1, 2, 3))",
        "lambda v, a: -solution_3(v, a)",
    ],
}
