"""minflow: normalizing flows from scratch in NumPy, with hand-written backward passes.

Direction convention everywhere: ``forward`` maps data x to latent z (the
density direction), ``inverse`` maps z to x (the sampling direction).
"""

__version__ = "0.1.0"
