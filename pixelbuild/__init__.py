"""pixelbuild: build AI-generated pixel art the way make builds code."""

from __future__ import annotations

__version__ = "0.1.0"
