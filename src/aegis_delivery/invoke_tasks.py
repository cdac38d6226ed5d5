"""The delivery tasks, to register in a repository's ``tasks.py``::

    from aegis_delivery.invoke_tasks import collection

    ns = collection()

The toolkit's own ``tasks.py`` is exactly that, so there is one way. Each task is flags -> one
call into ``aegis_delivery`` -> one report; ``invoke --list`` lists them and ``invoke --help
TASK`` shows a task's flags. Building the collection imports nothing heavy: each task imports
what it needs when it runs, so `invoke --list` stays fast.
"""

from __future__ import annotations

from invoke.collection import Collection
from invoke.tasks import Task

from aegis_delivery import tasks_cluster, tasks_release


def collection() -> Collection:
    """Every delivery task, in one Invoke collection."""
    found = Collection()
    for module in (tasks_release, tasks_cluster):
        for value in vars(module).values():
            if isinstance(value, Task):
                found.add_task(value)
    return found
