"""Typical wrong answers to the exercises of lessons/09_gpu.py: Python expressions that check_exercise_k must reject (tests/test_lessons.py)."""

WRONG_ANSWERS = {
    1: ["'a'", "'c'", "'d'"],
    2: ["40", "1000"],
    3: ["384_962 * 4", "384_962 * 8 * 4"],
}
