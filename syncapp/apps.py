from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncAppConfig(AppConfig):
    name = "syncapp"
    verbose_name = _("Sync engine")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
