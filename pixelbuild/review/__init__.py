"""Art review: static pages that show what pixelbuild made (``gallery``), what a branch changed (``diff``),
seed candidates (``explore``), and the ComfyUI graph behind a sprite (``workflow``).

Every page is one self-contained ``index.html`` plus the images it shows, copied or hard-linked beside
it: it opens from ``file://`` with no network access.
"""
