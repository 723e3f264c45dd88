"""Everything pixelbuild keeps under ``.pixelbuild/`` (local, never committed, always safe to delete).

* ``layout``: where each piece lives (the one place the layout is spelled).
* ``seal``: the per-user key that seals state files, so a carried-in file is never trusted.
* ``stamp``: the no-op stamp, written after a complete build and checked before the next one.
* ``filehashes``: the one file hasher and the file-hash cache.
* ``parsecache``: validated manifest documents by the digest of their bytes.
* ``speccache``: resolved sprites and their keys per manifest file.
* ``store``: the CAS (blobs) and its typed action records (generation, post, pack), with gc.
* ``journal``: work finished since the lock was last written.

Nothing is imported here: the no-op check loads ``stamp`` (and what it needs) alone.
"""
