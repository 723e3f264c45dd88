"""The version of pixelbuild: stamped into caches and the no-op stamp, shown by ``--version``.

Its own module so that modules on the no-op path (and the package face) import it without a cycle.
"""

__version__ = "0.1.0"
