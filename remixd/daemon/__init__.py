"""The composition root: the service, its API connection, metrics, notify, status, folders."""
