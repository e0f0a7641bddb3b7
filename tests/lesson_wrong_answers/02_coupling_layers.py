"""Typical wrong answers to the exercises of lessons/02_coupling_layers.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda z: (solution_1(z)[0], -solution_1(z)[1])",  # log-det sign
        "lambda z: (z.copy(), solution_1(z)[1])",  # x_b not inverted
        "layer_ex.forward",  # the forward pass instead of the inverse
    ],
    2: ["1", "2", "4"],
    3: ["1 / math.sqrt(2 * math.pi)", "1.0", "1 / math.pi"],
}
