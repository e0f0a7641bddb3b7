"""minflow: normalizing flows from scratch in NumPy, with hand-written backward passes.

Direction convention everywhere: ``forward`` maps data x to latent z (the
density direction), ``inverse`` maps z to x (the sampling direction).
"""

from .threads import set_threads

__all__ = ["set_threads"]

__version__ = "0.1.0"
