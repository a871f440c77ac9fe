"""The workbench's own version (recorded in every stored result and export manifest)."""

VERSION = "0.1.0"
