"""The one exception type users catch."""

from __future__ import annotations


class WorkbenchError(ValueError):
    """A problem with the user's input that the workbench can explain.

    The message names the file or object, says what is wrong and what to do about it. It subclasses
    `ValueError` so code that already guards against bad values catches it too.
    """


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
