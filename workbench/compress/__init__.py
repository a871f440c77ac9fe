"""Compression techniques: one frozen config each, applied by `compress(handle, *configs, task=None)`."""

from workbench.compress.base import CompressionConfig, compress, config_from_dict, technique

__all__ = ["CompressionConfig", "compress", "config_from_dict", "technique"]
