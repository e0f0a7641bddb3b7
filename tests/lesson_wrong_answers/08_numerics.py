"""Typical wrong answers to the exercises of lessons/08_numerics.py.

For each exercise k, a list of Python expressions evaluated in the lesson's
kernel after a fast run (its imports and variables exist there);
tests/test_lessons.py checks that check_exercise_k rejects each of them with
an AssertionError that explains what is wrong.
"""

WRONG_ANSWERS = {
    1: ["1 / (1 + math.exp(-2)) * (1 - 1 / (1 + math.exp(-2)))", "1 / (1 + math.exp(-2))"],
    2: ["16", "4"],
    3: ["12.8 / 64", "12.8 / math.log(2)"],
}
