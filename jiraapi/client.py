"""A thin Jira REST client: Cloud (REST v3, ADF) and Data Center (REST v2, wiki markup).

One method per Jira call; authentication, timeouts and error sorting live in `_request`.
Retrying is the caller's business (Celery tasks retry on `JiraTransientError`), so a worker
never sleeps on a rate limit.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, urljoin

import requests
from urllib3.fields import format_multipart_header_param

from . import metrics
from .errors import (
    JiraAuthError,
    JiraError,
    JiraNotFound,
    JiraPermanentError,
    JiraRateLimited,
    JiraRedirectRefused,
    JiraTransientError,
)
from .transport import GuardedAdapter, environment_read_once
from .urlpolicy import UrlPolicy, origin, origin_text

logger = logging.getLogger(__name__)

CLOUD = "cloud"
DATACENTER = "datacenter"
RETRY_STATUSES = {408, 409, 425, 500, 502, 503, 504}
CHUNK = 1 << 16  # attachments move through in pieces of this size, never whole
MAX_REDIRECTS = 5
MAX_RECONCILE = 50  # Cloud's limit on reconcileIssues


@dataclass
class CallCount:
    count: int = 0


_counters: ContextVar[tuple[CallCount, ...]] = ContextVar("jira_call_counters", default=())


@contextmanager
def counting_calls() -> Iterator[CallCount]:
    """Counts the Jira calls made inside the block, by any client, in this thread only."""
    counter = CallCount()
    token = _counters.set((*_counters.get(), counter))
    try:
        yield counter
    finally:
        _counters.reset(token)


@dataclass(frozen=True)
class JiraSite:
    base_url: str
    flavor: str
    user: str
    token: str = field(repr=False)  # never in logs or error texts
    name: str = "Jira"


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` is seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class JiraClient:
    def __init__(
        self,
        site: JiraSite,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        session: requests.Session | None = None,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self.site = site
        self.base_url = site.base_url.rstrip("/")
        self.origin = origin(self.base_url)
        self.flavor = site.flavor
        self.api = "/rest/api/3" if site.flavor == CLOUD else "/rest/api/2"
        self.timeout = timeout
        self._calls = metrics.site_counter(metrics.JIRA_CALLS, self.base_url)
        self.session = session or environment_read_once(requests.Session(), self.base_url)
        self.session.headers.update({"Accept": "application/json"})
        if url_policy is not None:
            # Checked again on every connection: the host may resolve elsewhere tomorrow.
            adapter = GuardedAdapter(url_policy)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
        if site.flavor == DATACENTER and not site.user:
            self.session.headers["Authorization"] = f"Bearer {site.token}"
        else:
            self.session.auth = (site.user, site.token)

    @property
    def is_cloud(self) -> bool:
        return self.flavor == CLOUD

    # --- transport -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        kwargs.setdefault("timeout", self.timeout)
        for counter in _counters.get():
            counter.count += 1
        self._calls.inc()
        response = self._send(method, path, url, kwargs)
        logger.debug(
            "jira.call", extra={"method": method, "path": path, "status": response.status_code}
        )
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        error = self._error(method, path, response)
        error.base_url, error.user = self.base_url, self.site.user
        raise error

    def _send(self, method: str, path: str, url: str, kwargs: dict) -> requests.Response:
        """One call, following redirects only within the site's own origin.

        A redirect to another scheme, host or port is refused (`JiraRedirectRefused`): the
        credentials and a 307's body never leave the site, and a partner cannot point us at
        an internal address.
        """
        for _hop in range(MAX_REDIRECTS + 1):
            if origin(url) != self.origin:
                what = "redirect to another origin" if _hop else "a URL of another origin"
                raise JiraRedirectRefused(
                    f"{method} {path}: {what} ({origin_text(url)}) refused; "
                    f"the site is {origin_text(self.base_url)}",
                )
            try:
                response = self.session.request(method, url, allow_redirects=False, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise JiraTransientError(f"{method} {path}: {type(exc).__name__}") from exc
            if not response.is_redirect:
                return response
            status = response.status_code
            url = urljoin(response.url or url, response.headers["Location"])
            response.close()
            kwargs.pop("params", None)  # the new location carries its own query
            if status in (301, 302, 303) and method != "HEAD":
                # What browsers (and requests) do: the method becomes GET, the body is dropped.
                method = "GET"
                kwargs.pop("json", None)
                kwargs.pop("data", None)
        raise JiraPermanentError(f"{method} {path}: more than {MAX_REDIRECTS} redirects")

    def _error(self, method: str, path: str, response: requests.Response) -> JiraError:
        status = response.status_code
        messages: list[str] = []
        errors: dict[str, str] = {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            messages = [str(m) for m in body.get("errorMessages") or []]
            errors = {str(k): str(v) for k, v in (body.get("errors") or {}).items()}
            if not messages and body.get("message"):
                messages = [str(body["message"])]
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        text = f"{method} {path} -> {status}"
        kwargs = {"status": status, "messages": messages, "errors": errors}
        if status == 429 or (status == 503 and retry_after is not None):
            metrics.site_counter(metrics.JIRA_RATE_LIMITED, self.base_url).inc()
            return JiraRateLimited(text, retry_after=retry_after, **kwargs)
        if status in RETRY_STATUSES or status >= 500:
            return JiraTransientError(text, retry_after=retry_after, **kwargs)
        if status == 404:
            return JiraNotFound(text, **kwargs)
        if status in (401, 403):
            return JiraAuthError(text, **kwargs)
        return JiraPermanentError(text, **kwargs)

    # --- issues ----------------------------------------------------------------------------

    def get_issue(
        self,
        key: str,
        *,
        fields: list[str] | None = None,
        expand: str | None = None,
        properties: list[str] | None = None,
    ) -> dict:
        params: dict[str, str] = {}
        if fields:
            params["fields"] = ",".join(fields)
        if expand:
            params["expand"] = expand
        if properties:
            params["properties"] = ",".join(properties)
        return self._request("GET", f"{self.api}/issue/{key}", params=params)

    def create_issue(self, fields: dict, *, properties: dict[str, Any] | None = None) -> dict:
        body: dict[str, Any] = {"fields": fields}
        if properties:
            body["properties"] = [{"key": k, "value": v} for k, v in properties.items()]
        return self._request("POST", f"{self.api}/issue", json=body)

    def edit_issue(self, key: str, fields: dict) -> None:
        self._request("PUT", f"{self.api}/issue/{key}", json={"fields": fields})

    def delete_issue(self, key: str) -> None:
        self._request("DELETE", f"{self.api}/issue/{key}", params={"deleteSubtasks": "true"})

    def get_transitions(self, key: str, *, with_fields: bool = False) -> list[dict]:
        """The transitions available from the issue's status; `with_fields`: each with its
        screen's fields (`required`, `allowedValues`), in the same call."""
        params = {"expand": "transitions.fields"} if with_fields else None
        return self._request("GET", f"{self.api}/issue/{key}/transitions", params=params)[
            "transitions"
        ]

    def transition_issue(self, key: str, transition_id: str, fields: dict | None = None) -> None:
        body: dict[str, Any] = {"transition": {"id": str(transition_id)}}
        if fields:
            body["fields"] = fields
        self._request("POST", f"{self.api}/issue/{key}/transitions", json=body)

    # --- comments --------------------------------------------------------------------------

    def _all_pages(self, path: str, member: str, params: dict) -> list[dict]:
        """Every item of a `startAt`/`total` paged list (`member`: its key in a page)."""
        found: list[dict] = []
        while True:
            page = self._request("GET", path, params={**params, "startAt": len(found)})
            items = page.get(member, [])
            found += items
            if not items or len(found) >= page.get("total", 0):
                return found

    def get_comments(self, key: str) -> list[dict]:
        # `properties` shows which comments Service Management keeps internal.
        params = {"maxResults": 100, "expand": "properties"}
        return self._all_pages(f"{self.api}/issue/{key}/comment", "comments", params)

    def add_comment(self, key: str, body: Any) -> dict:
        return self._request("POST", f"{self.api}/issue/{key}/comment", json={"body": body})

    def edit_comment(self, key: str, comment_id: str, body: Any) -> dict:
        return self._request(
            "PUT", f"{self.api}/issue/{key}/comment/{comment_id}", json={"body": body}
        )

    def delete_comment(self, key: str, comment_id: str) -> None:
        self._request("DELETE", f"{self.api}/issue/{key}/comment/{comment_id}")

    # --- worklogs --------------------------------------------------------------------------

    def get_worklogs(self, key: str) -> list[dict]:
        return self._all_pages(f"{self.api}/issue/{key}/worklog", "worklogs", {"maxResults": 1000})

    def get_worklog(self, key: str, worklog_id: str) -> dict:
        return self._request("GET", f"{self.api}/issue/{key}/worklog/{worklog_id}")

    def add_worklog(self, key: str, worklog: dict) -> dict:
        """`worklog`: `timeSpentSeconds`, `started`, `comment`; the remaining estimate is
        left as it is (a copy of someone's time must not move the estimate twice)."""
        return self._request(
            "POST",
            f"{self.api}/issue/{key}/worklog",
            params={"adjustEstimate": "leave"},
            json=worklog,
        )

    def edit_worklog(self, key: str, worklog_id: str, worklog: dict) -> dict:
        return self._request(
            "PUT",
            f"{self.api}/issue/{key}/worklog/{worklog_id}",
            params={"adjustEstimate": "leave"},
            json=worklog,
        )

    def delete_worklog(self, key: str, worklog_id: str) -> None:
        self._request(
            "DELETE",
            f"{self.api}/issue/{key}/worklog/{worklog_id}",
            params={"adjustEstimate": "leave"},
        )

    # --- attachments -----------------------------------------------------------------------

    def get_attachment(self, attachment_id: str) -> dict:
        return self._request("GET", f"{self.api}/attachment/{attachment_id}")

    def delete_attachment(self, attachment_id: str) -> None:
        self._request("DELETE", f"{self.api}/attachment/{attachment_id}")

    def download_attachment(self, attachment: dict, dest: IO[bytes]) -> tuple[int, str]:
        """Write the attachment's content to `dest` piece by piece; returns its size and
        SHA-256 (hex), computed on the way. Cloud: the content resource without its redirect
        to the media service (another origin); Data Center: the attachment servlet."""
        aid = str(attachment["id"])
        if self.is_cloud:
            path = f"{self.api}/attachment/content/{aid}"
            params: dict[str, str] | None = {"redirect": "false"}
        else:
            path = (
                f"/secure/attachment/{aid}/{quote(str(attachment.get('filename') or aid), safe='')}"
            )
            params = None
        for counter in _counters.get():
            counter.count += 1
        self._calls.inc()
        url = f"{self.base_url}{path}"
        kwargs: dict[str, Any] = {"timeout": self.timeout, "stream": True, "params": params}
        response = self._send("GET", path, url, kwargs)
        with response:
            if response.status_code >= 400:
                error = self._error("GET", path, response)
                error.base_url, error.user = self.base_url, self.site.user
                raise error
            digest, size = hashlib.sha256(), 0
            try:
                for chunk in response.iter_content(CHUNK):
                    dest.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except requests.RequestException as exc:
                raise JiraTransientError(f"GET {path}: {type(exc).__name__}") from exc
        return size, digest.hexdigest()

    def add_attachment(self, key: str, filename: str, source: IO[bytes], size: int) -> list[dict]:
        """Upload one file read from `source` (`size` bytes from its current position) as
        the multipart part `file`; Jira answers the list of attachments added. The body is
        streamed, never held whole (`requests`' `files=` would build it in memory)."""
        body = MultipartFile(filename, source, size)
        return self._request(
            "POST",
            f"{self.api}/issue/{key}/attachments",
            data=body,
            headers={
                "X-Atlassian-Token": "no-check",
                "Content-Type": body.content_type,
                "Content-Length": str(len(body)),
            },
        )

    # --- search ----------------------------------------------------------------------------

    def search(
        self,
        jql: str,
        *,
        fields: list[str] | None = None,
        page_size: int = 100,
        reconcile: list[str] | None = None,
    ) -> Iterator[dict]:
        """Every issue matching `jql`, page by page (Cloud: nextPageToken; DC: startAt).

        Cloud's search is eventually consistent: `reconcile` names issue ids (at most 50)
        whose current state it must reflect (`reconcileIssues`). Data Center has no such
        parameter and gets none: the node that changes an issue reindexes it in that request
        (other nodes of a cluster follow by index replication, near real time).
        """
        field_list = fields or ["summary"]
        if self.is_cloud:
            token = None
            while True:
                body: dict[str, Any] = {"jql": jql, "fields": field_list, "maxResults": page_size}
                if reconcile:
                    body["reconcileIssues"] = [int(i) for i in reconcile[:MAX_RECONCILE]]
                if token:
                    body["nextPageToken"] = token
                page = self._request("POST", f"{self.api}/search/jql", json=body)
                yield from page.get("issues", [])
                token = page.get("nextPageToken")
                if not token or page.get("isLast"):
                    return
        else:
            start = 0
            while True:
                page = self._request(
                    "POST",
                    f"{self.api}/search",
                    json={
                        "jql": jql,
                        "fields": field_list,
                        "startAt": start,
                        "maxResults": page_size,
                    },
                )
                issues = page.get("issues", [])
                yield from issues
                start += len(issues)
                if not issues or start >= page.get("total", 0):
                    return

    def search_pages(
        self,
        jql: str,
        *,
        fields: list[str],
        properties: list[str] | None = None,
        page_size: int = 100,
    ) -> Iterator[list[dict]]:
        """The issues matching `jql`, one list per page (one call each); `properties`: issue
        entity properties to include (`issue["properties"]`)."""
        token, start = None, 0
        while True:
            body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": page_size}
            if properties:
                body["properties"] = properties
            if self.is_cloud:
                if token:
                    body["nextPageToken"] = token
                page = self._request("POST", f"{self.api}/search/jql", json=body)
            else:
                body["startAt"] = start
                page = self._request("POST", f"{self.api}/search", json=body)
            issues = list(page.get("issues") or [])
            yield issues
            if self.is_cloud:
                token = page.get("nextPageToken")
                if not token or page.get("isLast"):
                    return
            else:
                start += len(issues)
                if not issues or start >= page.get("total", 0):
                    return

    # --- entity properties, remote links, users --------------------------------------------

    def get_property(self, key: str, prop: str) -> Any | None:
        try:
            return self._request("GET", f"{self.api}/issue/{key}/properties/{prop}")["value"]
        except JiraNotFound:
            return None

    def set_property(self, key: str, prop: str, value: Any) -> None:
        self._request("PUT", f"{self.api}/issue/{key}/properties/{prop}", json=value)

    def add_remote_link(self, key: str, *, url: str, title: str, global_id: str) -> dict:
        return self._request(
            "POST",
            f"{self.api}/issue/{key}/remotelink",
            json={"globalId": global_id, "object": {"url": url, "title": title}},
        )

    def create_issue_link(self, *, type_name: str, inward_key: str, outward_key: str) -> None:
        """Link two issues: `inward_key` shows the type's outward description ("A blocks B"
        for `inward_key` A, `outward_key` B). Jira answers 201 without a body (no id)."""
        self._request(
            "POST",
            f"{self.api}/issueLink",
            json={
                "type": {"name": type_name},
                "inwardIssue": {"key": inward_key},
                "outwardIssue": {"key": outward_key},
            },
        )

    def delete_issue_link(self, link_id: str) -> None:
        self._request("DELETE", f"{self.api}/issueLink/{link_id}")

    def issue_link_types(self) -> list[dict]:
        """The site's link types (`name`, `inward`, `outward`)."""
        return list(self._request("GET", f"{self.api}/issueLinkType").get("issueLinkTypes") or [])

    def find_user(self, query: str) -> dict | None:
        """The user with this e-mail address (Cloud) or user name / e-mail (Data Center)."""
        params = {"query": query} if self.is_cloud else {"username": query}
        users = self._request("GET", f"{self.api}/user/search", params=params) or []
        for user in users:
            if query.lower() in (
                str(user.get("emailAddress", "")).lower(),
                str(user.get("name", "")).lower(),
            ):
                return user
        return None

    def myself(self) -> dict:
        return self._request("GET", f"{self.api}/myself")

    def get_changelog(self, key: str) -> list[dict]:
        """The issue's most recent change histories (up to 100), oldest first.

        Cloud pages `/issue/{key}/changelog` from the oldest (at most 100 a page; its
        `expand=changelog` is cut short), so the last page is read; Data Center gives every
        history with `expand=changelog`.
        """
        if not self.is_cloud:
            found = self.get_issue(key, fields=["updated"], expand="changelog")
            return list((found.get("changelog") or {}).get("histories") or [])[-100:]
        path = f"{self.api}/issue/{key}/changelog"
        page = self._request("GET", path, params={"startAt": 0, "maxResults": 100})
        total, values = int(page.get("total") or 0), list(page.get("values") or [])
        if total > len(values):
            start = max(total - 100, 0)
            page = self._request("GET", path, params={"startAt": start, "maxResults": 100})
            values = list(page.get("values") or [])
        return values

    def get_project(self, key: str) -> dict:
        """A project, with its `components` and `versions` (each with `id` and `name`)."""
        return self._request("GET", f"{self.api}/project/{key}")

    def create_version(self, *, project_id: str, name: str) -> dict:
        """A new version (name only) in the project with id `project_id`; needs the
        Administer Projects permission there (403 without it; 400 for a duplicate name)."""
        body = {"name": name, "projectId": int(project_id)}
        return self._request("POST", f"{self.api}/version", json=body)

    def get_project_statuses(self, key: str) -> list[dict]:
        """Per issue type of the project, the statuses of its workflow (`statuses`)."""
        return self._request("GET", f"{self.api}/project/{key}/statuses")

    def server_info(self) -> dict:
        return self._request("GET", f"{self.api}/serverInfo")


class MultipartFile:
    """A `multipart/form-data` body of one part `file`, read piece by piece: its head, the
    file's bytes from `source`, its tail. `len()` is known up front (Content-Length), so the
    upload needs no chunked encoding and no copy of the file in memory."""

    def __init__(self, filename: str, source: IO[bytes], size: int) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        # As browsers and requests' `files=` name it (HTML5: UTF-8, `"` as %22).
        disposition = format_multipart_header_param("filename", filename)
        self._head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; {disposition}\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._source = source
        self._start = source.tell()
        self._size = size
        self._pos = 0

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Only a rewind (a resend) is needed."""
        self._pos = 0 if whence == os.SEEK_SET else len(self)
        if self._pos == 0:
            self._source.seek(self._start)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self) - self._pos
        out = bytearray()
        while n > 0 and self._pos < len(self):
            head, body_end = len(self._head), len(self._head) + self._size
            if self._pos < head:
                piece = self._head[self._pos : self._pos + n]
            elif self._pos < body_end:
                piece = self._source.read(min(n, body_end - self._pos))
                if not piece:
                    raise OSError("the attachment file ended early")
            else:
                at = self._pos - body_end
                piece = self._tail[at : at + n]
            out += piece
            self._pos += len(piece)
            n -= len(piece)
        return bytes(out)
