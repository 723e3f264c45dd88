"""Helpers shared by the ops' pixel work: array conversion and transparent pixels.

Colour and size params are read in ``pixelbuild.post.params``, anchors in ``pixelbuild.anchors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# numpy and PIL are imported where pixels are touched: loading the ops' declarations (resolve, check, the
# schema) never needs them.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

    U8Array = NDArray[np.uint8]


def to_array(image: Image.Image) -> U8Array:
    """A writable (H, W, 4) uint8 copy of ``image``'s RGBA pixels."""
    import numpy as np
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    return np.array(rgba, dtype=np.uint8)


def from_array(pixels: NDArray[Any]) -> Image.Image:
    """An RGBA image from an (H, W, 4) array (values must already lie in 0..255)."""
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGBA")


def clear_transparent(pixels: U8Array) -> U8Array:
    """Set the colour of fully transparent pixels to 0 in place, so invisible colour never matters."""
    pixels[pixels[..., 3] == 0] = 0
    return pixels
