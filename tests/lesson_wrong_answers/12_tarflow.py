"""Typical wrong answers to the exercises of lessons/12_tarflow.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: ["64", "16", "6"],
    2: ["1.5", "1.5 + 0.5 * (-1.5 / 0.5**2)"],
    3: [
        "lambda block, z, n_iter: z",
        "lambda block, z, n_iter: solution_3(block, z, 1)",
        "lambda block, z, n_iter: z * np.exp(block._conditioner(z)[1]) + block._conditioner(z)[0]",
    ],
}
