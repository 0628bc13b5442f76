"""jirasim: a stateful fake Jira (Cloud REST v3/v2 and Data Center REST v2) that fires webhooks.

Start one in-process with :class:`JiraSim`, or as a process with ``python -m jirasim``.
"""

from .server import JiraSim
from .store import ApiError, Store

__all__ = ["ApiError", "JiraSim", "Store"]
