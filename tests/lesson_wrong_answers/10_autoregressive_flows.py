"""Typical wrong answers to the exercises of lessons/10_autoregressive_flows.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: [
        "lambda m_in, m_out, last: m_out[None, :] >= m_in[:, None]",  # >= into the outputs too
        "lambda m_in, m_out, last: m_out[None, :] > m_in[:, None]",  # > into the hidden units too
    ],
    2: ["(40, 8)", "(8, 8)", "(1, 5)"],
    3: [
        "lambda z: z * np.exp(ex3_conditioner(z)[1]) + ex3_conditioner(z)[0]",  # one pass at z (IAF's sampling)
        "lambda z: z",
    ],
}
