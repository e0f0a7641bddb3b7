"""Typical wrong answers to the exercises of lessons/07_sampling_and_latent_space.py.

For each exercise k, a list of Python expressions evaluated in the lesson's
kernel after a fast run (its imports and variables exist there);
tests/test_lessons.py checks that check_exercise_k rejects each of them with
an AssertionError that explains what is wrong.
"""

WRONG_ANSWERS = {
    1: ["64", "0.7 * 64"],
    2: ["2", "0.25"],
    3: ["lambda z_a, z_b, t: (1 - t) * z_a + t * z_b", "lambda z_a, z_b, t: z_a"],
}
