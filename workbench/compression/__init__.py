"""Compression techniques: one frozen config each, applied by `compress(handle, *configs, task=None)`.

Importing this package registers every technique (torch, and ONNX / TFLite where they apply).
"""

# registering modules: Prune on TFLite files; the language-model techniques
from workbench.compression import lm_prune, lm_quantize, lm_recover, prune_tflite  # noqa: F401
from workbench.compression.base import CompressionConfig, compress, config_from_dict, supported_frameworks, technique
from workbench.compression.distill import Distill
from workbench.compression.lowrank import LowRank, lowrank_plan
from workbench.compression.mixed_precision import auto_mixed_precision, sensitivity
from workbench.compression.prune import Prune
from workbench.compression.pruning_plan import prune_plan
from workbench.compression.quantize import Quantize, effective_bits_per_weight, fake_quantize
from workbench.compression.quantize_files import realize_onnx
from workbench.compression.recover import Recover

__all__ = [
    "CompressionConfig",
    "Distill",
    "LowRank",
    "Prune",
    "Quantize",
    "Recover",
    "auto_mixed_precision",
    "compress",
    "config_from_dict",
    "effective_bits_per_weight",
    "fake_quantize",
    "lowrank_plan",
    "prune_plan",
    "realize_onnx",
    "sensitivity",
    "supported_frameworks",
    "technique",
]
