import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncapp.settings")

application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve on a public development key (DEBUG off).
from ops.checks import refuse_development_keys  # noqa: E402

refuse_development_keys()
