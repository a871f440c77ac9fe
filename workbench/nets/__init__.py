"""Plain `torch.nn` building blocks with no workbench dependencies (they import torch when imported)."""
