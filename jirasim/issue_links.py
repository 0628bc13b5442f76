"""Issue links between two issues of the site (`/issueLink`, `/issueLinkType`), as Jira has them.

A link has a type and two ends. In Jira's REST API the POST body's `inwardIssue` is the
issue that shows the type's *outward* description ("A blocks B" for `inwardIssue` A,
`outwardIssue` B, type Blocks); the webhook names A `sourceIssueId` and B
`destinationIssueId`. On A's `issuelinks` field the link shows B as `outwardIssue`, on B's
as `inwardIssue` A. Creating or deleting one records a `Link` changelog item on both issues
("This issue blocks B" / "This issue is blocked by A") and fires `issuelink_created` /
`issuelink_deleted` on both flavors; Jira Cloud also fires `jira:issue_updated` for each of
the two issues (Data Center does not).
"""

from __future__ import annotations

from typing import Any

from .clock import now_ms
from .errors import ApiError

# Jira's default link types: id, name, inward, outward.
DEFAULT_LINK_TYPES = [
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
]


class IssueLinksMixin:
    """Issue links and link types (mixed into :class:`jirasim.store.Store`)."""

    # ------------------------------------------------------------------ link types
    def link_type_json(self, t: dict) -> dict:
        return {
            "id": t["id"],
            "name": t["name"],
            "inward": t["inward"],
            "outward": t["outward"],
            "self": f"{self.base_url}/rest/api/2/issueLinkType/{t['id']}",
        }

    def _link_type(self, spec: Any) -> dict:
        """The link type a request names by `name` or `id` (400 if none)."""
        if isinstance(spec, dict):
            for t in self.link_types.values():
                if (spec.get("id") is not None and str(spec["id"]) == t["id"]) or (
                    spec.get("name") is not None and str(spec["name"]) == t["name"]
                ):
                    return t
            wanted = spec.get("name") or spec.get("id")
            raise ApiError(404, [f"No issue link type with name '{wanted}' found."])
        raise ApiError(400, ["Issue link type is required."])

    def add_link_type(self, body: Any) -> dict:
        with self.lock:
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            errors = {
                k: f"The issue link type {k} is required."
                for k in ("name", "inward", "outward")
                if not isinstance(body.get(k), str) or not body[k].strip()
            }
            if errors:
                raise ApiError(400, errors=errors)
            if any(t["name"].lower() == body["name"].lower() for t in self.link_types.values()):
                raise ApiError(400, [f"An issue link type named '{body['name']}' exists."])
            tid = self._next("linktype")
            t = {
                "id": tid,
                "name": body["name"],
                "inward": body["inward"],
                "outward": body["outward"],
            }
            self.link_types[tid] = t
            return t

    # ------------------------------------------------------------------ links
    def _link_end(self, spec: Any, role: str) -> dict:
        if not isinstance(spec, dict) or not (spec.get("key") or spec.get("id")):
            raise ApiError(400, errors={role: f"The {role} is required."})
        try:
            return self.get_issue(str(spec.get("id") or spec.get("key")))
        except ApiError:
            raise ApiError(404, ["Issue Does Not Exist"]) from None

    def issue_link_json(self, link: dict) -> dict:
        t = self.link_types[link["type"]]
        return {
            "id": link["id"],
            "self": f"{self.base_url}/rest/api/2/issueLink/{link['id']}",
            "type": self.link_type_json(t),
            "inwardIssue": self._issue_ref(self.issues[link["source"]]),
            "outwardIssue": self._issue_ref(self.issues[link["dest"]]),
        }

    def issuelinks_field(self, issue: dict) -> list[dict]:
        """The issue's `issuelinks` field: each link with the other end as its side."""
        out = []
        for link in self.links.values():
            if issue["id"] not in (link["source"], link["dest"]):
                continue
            other = link["dest"] if link["source"] == issue["id"] else link["source"]
            if other not in self.issues:
                continue
            side = "outwardIssue" if link["source"] == issue["id"] else "inwardIssue"
            out.append(
                {
                    "id": link["id"],
                    "self": f"{self.base_url}/rest/api/2/issueLink/{link['id']}",
                    "type": self.link_type_json(self.link_types[link["type"]]),
                    side: self._issue_ref(self.issues[other]),
                }
            )
        return out

    def get_issue_link(self, link_id: str) -> dict:
        link = self.links.get(str(link_id))
        if link is None:
            raise ApiError(404, [f"No issue link with id '{link_id}' exists."])
        return link

    def _link_items(self, link: dict, *, removed: bool) -> tuple[dict, dict]:
        """The `Link` changelog items of the two ends (source's, destination's)."""
        t = self.link_types[link["type"]]
        source, dest = self.issues[link["source"]], self.issues[link["dest"]]
        items = []
        for other, verb in ((dest, t["outward"]), (source, t["inward"])):
            text = f"This issue {verb} {other['key']}"
            if removed:
                item = self._item("issuelinks", other["key"], text, None, None)
            else:
                item = self._item("issuelinks", None, None, other["key"], text)
            item["field"] = "Link"
            items.append(item)
        return items[0], items[1]

    def _link_changed(self, actor: dict, link: dict, *, removed: bool) -> None:
        ts = now_ms()
        source, dest = self.issues[link["source"]], self.issues[link["dest"]]
        event = "issuelink_deleted" if removed else "issuelink_created"
        self._emit(event, None, actor, source, ts=ts, link=dict(link))
        for issue, item in zip(
            (source, dest), self._link_items(link, removed=removed), strict=True
        ):
            issue["updated"] = ts
            hist = self._record(issue, actor, [item], ts)
            if self.cloud:  # Data Center records the history but fires no issue event
                self._emit("jira:issue_updated", "issue_updated", actor, issue, hist, ts=ts)

    def create_issue_link(self, *, actor: dict, body: Any) -> dict:
        with self.lock:
            if not isinstance(body, dict):
                raise ApiError(400, ["Invalid body"])
            t = self._link_type(body.get("type"))
            source = self._link_end(body.get("inwardIssue"), "inwardIssue")
            dest = self._link_end(body.get("outwardIssue"), "outwardIssue")
            if source["id"] == dest["id"]:
                raise ApiError(400, ["You cannot link an issue to itself."])
            for link in self.links.values():  # Jira keeps one link per type and ends
                if (link["type"], link["source"], link["dest"]) == (
                    t["id"],
                    source["id"],
                    dest["id"],
                ):
                    return link
            link = {
                "id": self._next("issuelink"),
                "type": t["id"],
                "source": source["id"],
                "dest": dest["id"],
            }
            self.links[link["id"]] = link
            self._link_changed(actor, link, removed=False)
            return link

    def delete_issue_link(self, *, actor: dict, link_id: str) -> None:
        with self.lock:
            link = self.get_issue_link(link_id)
            del self.links[link["id"]]  # gone from the issues the events show
            self._link_changed(actor, link, removed=True)

    def _drop_links_of(self, issue_id: str) -> None:
        """An issue deleted takes its links with it (no link events, as the issue event says it)."""
        for lid in [lid for lid, x in self.links.items() if issue_id in (x["source"], x["dest"])]:
            del self.links[lid]
