"""The Jira webhook events the sync handles: the six a webhook must send us."""

WEBHOOK_EVENTS = (
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
)
