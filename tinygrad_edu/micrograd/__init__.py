"""micrograd's public API on tinygrad_edu's engine, in micrograd's module layout.

Replace ``micrograd`` by ``tinygrad_edu.micrograd`` in the imports of code written for
micrograd 0.1.0 (``from tinygrad_edu.micrograd.engine import Value``, ``from
tinygrad_edu.micrograd.nn import MLP``) and it runs with the same weights for the same
``random.seed`` and the same losses to rounding. What differs is in the README's "Coming from
micrograd" section and in the docstrings of `engine` and `nn`.
"""

from . import engine, nn

__all__ = ["engine", "nn"]
