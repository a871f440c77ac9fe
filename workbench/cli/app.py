"""`python -m workbench COMMAND`: one parser, commands found by name in the command modules' `HANDLERS`."""

from __future__ import annotations

import argparse
import os
import sys

from workbench.cli import commands, export_commands, search_commands
from workbench.core.errors import WorkbenchError

# Each command module adds its subparsers and maps command names to handlers; a new family is one more entry.
COMMAND_MODULES = (commands, export_commands, search_commands)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Edge Workbench: compress, measure, export.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; a `WorkbenchError` becomes ``error: ...`` on stderr and exit status 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = parser().parse_args(argv)
    handlers = {name: fn for module in COMMAND_MODULES for name, fn in module.HANDLERS.items()}
    try:
        return handlers[args.command](args)
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
