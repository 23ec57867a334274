"""Checks for the exercises, one module per chapter topic, all importable from here.

Each check takes a reader's function, compares it with a reference (PyTorch where one
exists) on random inputs, and either prints one line saying it passed or raises
AssertionError with a hint. A stub's NotImplementedError propagates, so a check fails on an
unfinished exercise. Chapters call them as ``checks.check_max_pool2d(my_max_pool2d)``.
"""

from helpers.checks.conv import check_conv2d, check_max_pool2d, check_receptive_field

__all__ = ["check_conv2d", "check_max_pool2d", "check_receptive_field"]
