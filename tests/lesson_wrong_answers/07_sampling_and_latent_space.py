"""Typical wrong answers to the exercises of lessons/07_sampling_and_latent_space.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: ["64", "0.7 * 64"],
    2: ["2", "0.25"],
    3: ["lambda z_a, z_b, t: (1 - t) * z_a + t * z_b", "lambda z_a, z_b, t: z_a"],
}
