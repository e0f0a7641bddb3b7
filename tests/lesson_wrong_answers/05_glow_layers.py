"""Typical wrong answers to the exercises of lessons/05_glow_layers.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda x: (-0.5 * np.log(x.var(axis=0)), -x.mean(axis=0))",  # statistics per pixel, not per channel
        "lambda x: (-0.5 * np.log(x.var(axis=(0, 2, 3))), np.zeros(4))",  # no bias
        "lambda x: (-np.log(x.var(axis=(0, 2, 3))), -x.mean(axis=(0, 2, 3)))",  # divides by the variance
    ],
    2: ["np.linalg.slogdet(W_EX)[1]", "3 * 256 * np.linalg.slogdet(W_EX)[1]"],
    3: [
        "lambda layer: np.log(np.abs(np.diag(layer.params['U']))).sum()",  # U's stored diagonal is zero
        "lambda layer: layer.params['log_s'].mean()",
    ],
}
