"""negdiff: negative pre-activations differentiate syntax (Kong et al., ICLR 2026), as a pipeline library.

Modules are cut by what they hold (the README's Layout table): the architecture records, model
loading, the hook mechanism, activation capture and dumps, scoring, the log-prob primitives, the
condition sweep, suites, the toy grammar package, the claims and their figures.
"""

__version__ = "0.1.0"
