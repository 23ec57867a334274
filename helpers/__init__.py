"""Shared, tested code for the book *Training Convolutional Networks, from NumPy to GPU*.

Import the modules you need, for example ``from helpers import numpy_nn, training``.
Each module has one concern:

- NumPy layers and optimizers: ``numpy_nn`` (convolution, pooling, dense layers, the loss),
  ``numpy_norm``, ``numpy_regularization``, ``numpy_resnet``, ``numpy_compress`` (pruning
  masks, integer quantization), ``numpy_optim`` and ``schedules``; ``init`` (weight
  initializations); ``gradcheck``; ``validation`` (the argument checks they share).
- Data: ``data`` (embedded data sets, ``DeviceLoader``), ``standard_datasets`` (MNIST,
  Fashion-MNIST, CIFAR-10 from a folder), ``data_files`` (finding and verifying the
  Fashion-MNIST files), ``augment`` (batched augmentations on the device,
  a package of ``geometry``, ``photometry``, ``occlusion``, ``mixing`` and ``policies``).
- PyTorch training: ``models``, ``training`` (``fit``, ``evaluate``), ``callbacks``,
  ``checkpoint``, ``progress``, ``transfer``, ``distributed``; ``quantization`` (real int8
  models on the CPU through torchao's PT2E flow); ``ablation`` (chapter 9's table of
  regularizers switched on and off, and its stored full-scale reference).
- Running and showing: ``device``, ``reproducibility``, ``timing``, ``plotting``;
  ``claims`` (``claim``: an experiment's claim, printed with its measured value and bound,
  asserted, and recorded for the claims ledger).
- ``checks``: the exercises' checks, one module per chapter topic.
"""

__version__ = "0.1.0"
