"""Typical wrong answers to the exercises of lessons/09_gpu.py.

For each exercise k, a list of Python expressions evaluated in the lesson's
kernel after a fast run (its imports and variables exist there);
tests/test_lessons.py checks that check_exercise_k rejects each of them with
an AssertionError that explains what is wrong.
"""

WRONG_ANSWERS = {
    1: ["'a'", "'c'", "'d'"],
    2: ["40", "1000"],
    3: ["384_962 * 4", "384_962 * 8 * 4"],
}
