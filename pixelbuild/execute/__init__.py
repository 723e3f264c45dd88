"""Execute a plan: the stale work of a build, as steps run by doit.

Read in the order of the flow: ``orchestrate`` (the run over a plan: pool, backend, steps in batches) →
``generation`` (generation jobs and the backend's life-cycle) → ``finishing`` (post-process in ``worker``
processes or restore, settle into lock entries, journal) → ``atlases`` (pack and restore); ``outputs``
(writes and removals in the output root) and ``outcomes`` (the result, failures) serve them all, and
``doit_runner`` is the one adapter to doit. ``context`` holds what a run is given.
"""
