"""Typical wrong answers to the exercises of lessons/12_tarflow.py.

For each exercise k, a list of Python expressions evaluated in the lesson's
kernel after a fast run (its imports and variables exist there);
tests/test_lessons.py checks that check_exercise_k rejects each of them with
an AssertionError that explains what is wrong.
"""

WRONG_ANSWERS = {
    1: ["64", "16", "6"],
    2: ["1.5", "1.5 + 0.5 * (-1.5 / 0.5**2)"],
    3: [
        "lambda block, z, n_iter: z",
        "lambda block, z, n_iter: solution_3(block, z, 1)",
        "lambda block, z, n_iter: z * np.exp(block._conditioner(z)[1]) + block._conditioner(z)[0]",
    ],
}
