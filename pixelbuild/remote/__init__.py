"""The shared remote cache (after Bazel's remote cache): ``ac/<action key>`` records and ``cas/<digest>``
blobs on an S3-compatible store or a shared folder, read and written through behind the local store.

``config`` says which remote (manifest, ``PIXELBUILD_REMOTE``, ``--remote``), ``transport`` moves bytes,
``cache`` validates and verifies what comes back, ``sync`` is what ``build``, ``push`` and ``pull`` do.
"""
