"""The command line (``python -m workbench`` / ``workbench``): see `workbench.cli.app`."""

from workbench.cli.app import main

__all__ = ["main"]
