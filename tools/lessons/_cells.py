"""Cell constructors for the lesson sources: ``md(text)`` and ``code(text)``.

Each lesson source (``tools/lessons/NN_topic.py``) defines ``CELLS``, a list
of these, and ``tools/build_lessons.py`` turns it into ``lessons/NN_topic.ipynb``.
Text is dedented and stripped of leading/trailing blank lines, so sources can
indent it freely.
"""

import textwrap

__all__ = ["code", "md"]


def _clean(text):
    return textwrap.dedent(text).strip("\n")


def md(text):
    """A Markdown cell."""
    return ("markdown", _clean(text))


def code(text):
    """A code cell."""
    return ("code", _clean(text))
