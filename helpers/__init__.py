"""Shared, tested code for the book *Training Convolutional Networks, from NumPy to GPU*.

Import the modules you need, for example ``from helpers import numpy_nn, training``.
Each module has one concern: ``device``, ``reproducibility``, ``data``,
``standard_datasets``, ``plotting``, ``training``, ``gradcheck``, ``timing``,
``checks`` and ``numpy_nn``.
"""

__version__ = "0.1.0"
