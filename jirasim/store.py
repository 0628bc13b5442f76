"""In-memory state of one simulated Jira site and every operation that changes it.

``Store`` is a facade composed of one mixin per concern (see the modules named below).
All public methods take the store lock, so the HTTP layer may call them from any thread.
Each change records a changelog history and notifies the listeners (the webhook dispatcher)
with an event, still under the lock, so payloads are rendered from a consistent snapshot.
"""

from __future__ import annotations

from .attachments import AttachmentOpsMixin
from .changelog import ChangelogMixin
from .clock import fmt_ts, ms_to_dt, now_ms
from .comments import CommentOpsMixin
from .editmeta import EditMetaMixin
from .errors import ApiError
from .issue_links import IssueLinksMixin
from .issue_ops import IssueOpsMixin
from .moves import MoveMixin
from .parse import ParseMixin
from .properties_links import PropertiesLinksMixin
from .render import RenderMixin, select_fields
from .search import JqlContext, SearchMixin, key_sort
from .state import DEFAULT_USER, SiteState
from .versions import VersionOpsMixin
from .workflow import WorkflowMixin
from .worklogs import WorklogOpsMixin

__all__ = [
    "DEFAULT_USER",
    "ApiError",
    "JqlContext",
    "Store",
    "fmt_ts",
    "key_sort",
    "ms_to_dt",
    "now_ms",
    "select_fields",
]


class Store(
    IssueOpsMixin,
    MoveMixin,
    VersionOpsMixin,
    EditMetaMixin,
    WorkflowMixin,
    CommentOpsMixin,
    WorklogOpsMixin,
    AttachmentOpsMixin,
    PropertiesLinksMixin,
    IssueLinksMixin,
    SearchMixin,
    ChangelogMixin,
    ParseMixin,
    RenderMixin,
    SiteState,
):
    """One Jira site: ``SiteState`` (data, lock, listeners) plus the mixins' operations.

    state: users, projects, issues, ids, auth, persistence  (:mod:`jirasim.state`)
    render: REST JSON of every record                       (:mod:`jirasim.render`)
    parse: request input -> stored values                   (:mod:`jirasim.parse`)
    changelog: items, histories, events                     (:mod:`jirasim.changelog`)
    issue_ops / workflow / comments / worklogs / properties_links / issue_links / moves /
    versions: changes
    editmeta: edit screens                                  (:mod:`jirasim.editmeta`)
    search: JQL search and webhook filters                  (:mod:`jirasim.search`)
    """
