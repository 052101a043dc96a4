"""Training: data assembly, augmentation, features, model, train loop, evaluation, export.

Needs the `train` extra (PyTorch): pip install 'waketrain[train]'.
"""
