"""Readers for model files that are not PyTorch: ONNX and TFLite."""
