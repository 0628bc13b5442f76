"""gunicorn's settings for this service: `gunicorn -c syncapp/gunicorn.conf.py syncapp.wsgi`.

The access log (enable it with `--access-logfile -`) goes through `SafeAccessLogger`: the
secret in a webhook URL's query string is blanked and control characters are escaped.
"""

logger_class = "core.access_log.SafeAccessLogger"
