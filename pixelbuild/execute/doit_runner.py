"""The doit adapter: runs a run's steps as doit tasks. The only module that imports doit.

doit is used as a library and only ever sees stale work: up-to-dateness was decided by the plan from the
lock and the files, so doit's own database is kept in memory and thrown away, and its reporter says
nothing (progress and failures are pixelbuild's).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from pixelbuild.notices import pinned


class Step(msgspec.Struct, frozen=True):
    """One task: ``action(*args)`` returns False when it failed (its failure is already recorded), and runs
    after the steps named in ``after``."""

    name: str
    action: Callable[..., bool]
    args: tuple[Any, ...] = ()
    after: tuple[str, ...] = ()


def run_steps(steps: Sequence[Step], threads: int) -> tuple[int, str]:
    """Run ``steps`` in ``threads`` threads (1: in this one), every step even when others fail.

    Returns doit's exit code and what it said about its own runtime errors (not task failures).
    """
    # doit's task control, dependency manager and runners, without its command line: the command layer
    # would parse arguments and configuration and look up plugins in every installed distribution's metadata
    # on each run, for nothing used here.
    from doit.control import TaskControl
    from doit.dependency import Dependency
    from doit.exceptions import InvalidCommand, InvalidDodoFile, InvalidTask
    from doit.runner import MThreadRunner, Runner
    from doit.task import Stream, Task

    tasks = [Task(s.name, actions=[(s.action, s.args)], task_dep=list(s.after), verbosity=2) for s in steps]
    reporter = _SilentReporter(None, None)
    saved = sys.stdout, sys.stderr
    try:
        control = TaskControl(tasks)
        control.process(None)  # every task, in the order given (dependencies first)
        dependencies = Dependency(MemoryDB, "")
        runner: Runner
        if threads > 1:
            runner = MThreadRunner(dependencies, reporter, True, False, Stream(2), threads)
        else:
            runner = Runner(dependencies, reporter, continue_=True, always_execute=False, stream=Stream(2))
        with pinned(saved[1]):
            code = runner.run_all(control.task_dispatcher())
    except (InvalidCommand, InvalidDodoFile, InvalidTask) as error:  # a step graph doit refuses
        return 3, str(error)
    finally:
        # doit's runners swap these out while tasks run; put the real ones back whatever happened.
        sys.stdout, sys.stderr = saved
        # A doit task and its actions reference each other, and the actions the run: drop the actions so
        # that the run and all it holds go when the build returns, not at the next full collection.
        for task in tasks:
            task._actions, task._action_instances = [], []
    return int(code), "\n".join(reporter.runtime_errors).strip()


class MemoryDB:
    """A doit dependency database that forgets everything: the lock is pixelbuild's build log."""

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self.name = name
        self._db: dict[str, dict[str, Any]] = {}

    def dump(self) -> None:
        """Nothing is kept."""

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        """Store a value for this run."""
        self._db.setdefault(task_id, {})[dependency] = value

    def get(self, task_id: str, dependency: str) -> Any:
        """A value stored in this run, or None."""
        return self._db.get(task_id, {}).get(dependency)

    def in_(self, task_id: str) -> bool:
        """Whether the task has stored values."""
        return task_id in self._db

    def remove(self, task_id: str) -> None:
        """Forget a task."""
        self._db.pop(task_id, None)

    def remove_all(self) -> None:
        """Forget everything."""
        self._db.clear()


class _SilentReporter:
    """doit reporter that says nothing: progress is pixelbuild's, failures are collected by the run."""

    def __init__(self, outstream: Any, options: Any) -> None:
        self.failures: list[Any] = []
        self.runtime_errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        """Nothing to set up."""

    def get_status(self, task: Any) -> None:
        """Not reported."""

    def execute_task(self, task: Any) -> None:
        """Not reported."""

    def add_failure(self, task: Any, fail: Any) -> None:
        """Collected by the run already."""
        self.failures.append((task.name, fail))

    def add_success(self, task: Any) -> None:
        """Not reported."""

    def skip_uptodate(self, task: Any) -> None:
        """Not reported."""

    def skip_ignore(self, task: Any) -> None:
        """Not reported."""

    def cleanup_error(self, exception: Any) -> None:
        """Not reported."""

    def runtime_error(self, msg: str) -> None:
        """Kept for debugging."""
        self.runtime_errors.append(msg)

    def teardown_task(self, task: Any) -> None:
        """Not reported."""

    def complete_run(self) -> None:
        """Not reported."""
