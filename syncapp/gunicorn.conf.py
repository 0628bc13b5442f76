"""gunicorn's settings for this service: `gunicorn -c syncapp/gunicorn.conf.py syncapp.wsgi`.

The access log (enable it with `--access-logfile -`) goes through `SafeAccessLogger`: the
secret in a webhook URL's query string is blanked and control characters are escaped.
"""

logger_class = "core.access_log.SafeAccessLogger"


def child_exit(server, worker) -> None:
    """A web process is gone: `/metrics` stops counting it among the live ones (its counters
    stay in the totals; prometheus_client's multiprocess mode)."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
