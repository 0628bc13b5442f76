from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganizationsConfig(AppConfig):
    name = "organizations"
    verbose_name = _("Partner organizations")

    def ready(self) -> None:
        from . import jira_urls  # noqa: F401  (registers the LOCAL_JIRA_URL check)
