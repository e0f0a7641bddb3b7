"""Typical wrong answers to the exercises of lessons/08_numerics.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: ["1 / (1 + math.exp(-2)) * (1 - 1 / (1 + math.exp(-2)))", "1 / (1 + math.exp(-2))"],
    2: ["16", "4"],
    3: ["12.8 / 64", "12.8 / math.log(2)"],
}
