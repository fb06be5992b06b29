"""The speed, memory and depth benchmark of issue 5: tinygrad_edu beside micrograd and PyTorch.

Run it with ``make bench`` (or ``python -m bench``); it writes ``bench/RESULTS.md``. Modules:
``moons`` (the seeded data and weights), ``engines`` (one adapter per engine), ``workloads``
(W1 chain, W2 moons step, W3 memory, W4 depth), ``child`` (the fresh subprocess of W3 and W4),
``report`` (machine line, tables, targets), ``commands`` (the README's commands, timed whole)
and ``run`` (the command line).
"""

__all__: list[str] = []
