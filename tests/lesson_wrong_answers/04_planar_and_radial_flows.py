"""Typical wrong answers to the exercises of lessons/04_planar_and_radial_flows.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "math.log(abs(1 + EX1['w'] @ EX1['u']))",  # no tanh'
        "math.log(abs(1 + math.tanh(EX1['w'] @ EX1['z'] + EX1['b']) * (EX1['w'] @ EX1['u'])))",  # tanh for tanh'
    ],
    2: ["EX2['u']", "np.array([-3.0, -0.95141])"],  # unconstrained; the wrong component moved
    3: [
        "lambda r, alpha, beta, dim: dim * np.log(1 + beta / (alpha + r))",  # D tangential factors
        "lambda r, alpha, beta, dim: dim * np.log(1 + beta / (alpha + r)) + 0 * r",
        "lambda r, alpha, beta, dim: (dim - 1) * np.log(1 + beta / (alpha + r)) + np.log(1 + beta / (alpha + r))",
    ],
}
