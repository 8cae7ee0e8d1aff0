"""negdiff: negative pre-activations differentiate syntax (Kong et al., ICLR 2026), as a pipeline library.

Modules are split by pipeline stage: ``corpus``, ``tokenizer``, ``training``, ``models``,
``activations``, ``scoring``, ``figures``; ``io``, ``data`` and ``config`` hold shared helpers.
"""

__version__ = "0.1.0"
