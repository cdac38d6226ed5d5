"""AegisTrader delivery tasks: the toolkit's own, registered the one way any repository
registers them. Each task, its flags and its help live in ``aegis_delivery.invoke_tasks``;
``invoke --list`` lists them and ``invoke --help TASK`` shows a task's flags.
"""

from aegis_delivery.invoke_tasks import collection

ns = collection()
