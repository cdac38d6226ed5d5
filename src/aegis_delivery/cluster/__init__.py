"""The cluster side: helm and kubectl command lines (helm, kube), access and guards (access),
the deploy lock (lock), and the deploy, rollback and status flows (deploy)."""
