"""Environment switches: the one parser of the workbench's on/off environment variables.

``WORKBENCH_FAST`` (small grids and evaluation splits, for tests and CI) is read here and nowhere else, so the
notebooks, the dashboards and the zoo agree on what turns it on: ``1``, ``true`` or ``yes`` (any case, spaces
ignored). Anything else, ``0`` and the empty string included, leaves it off.
"""

from __future__ import annotations

import os

TRUE_VALUES = ("1", "true", "yes")


def env_flag(name: str) -> bool:
    """True when the environment variable `name` is ``1``, ``true`` or ``yes`` (any case); False otherwise.

    Example:
        >>> import os
        >>> os.environ["WORKBENCH_EXAMPLE_FLAG"] = " Yes "
        >>> env_flag("WORKBENCH_EXAMPLE_FLAG")
        True
        >>> os.environ["WORKBENCH_EXAMPLE_FLAG"] = "0"
        >>> env_flag("WORKBENCH_EXAMPLE_FLAG")
        False
        >>> del os.environ["WORKBENCH_EXAMPLE_FLAG"]
    """
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def fast_mode() -> bool:
    """True when ``WORKBENCH_FAST`` is on (tests, CI): small grids and evaluation splits.

    Example:
        >>> import os
        >>> before = os.environ.pop("WORKBENCH_FAST", None)
        >>> fast_mode()
        False
        >>> if before is not None:
        ...     os.environ["WORKBENCH_FAST"] = before
    """
    return env_flag("WORKBENCH_FAST")


__all__ = ["TRUE_VALUES", "env_flag", "fast_mode"]
