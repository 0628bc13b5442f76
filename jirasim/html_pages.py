"""The human-readable pages: ``/`` (all issues) and ``/browse/KEY`` (one issue)."""

from __future__ import annotations

import html
import json

from .clock import fmt_ts
from .errors import ApiError
from .model import CUSTOM_FIELDS


class HtmlPages:
    """HTML views of the site, refreshed every 5 s (mixed into :class:`jirasim.app.App`)."""

    def html_index(self) -> str:
        s = self.store
        e = html.escape
        rows = []
        with s.lock:
            for p in s.projects.values():
                rows.append(f"<h2>{e(p['key'])} — {e(p['name'])}</h2><table>")
                rows.append(
                    "<tr><th>Key</th><th>Type</th><th>Summary</th><th>Status</th>"
                    "<th>Priority</th><th>Assignee</th><th>Updated</th><th>Comments</th></tr>"
                )
                issues = sorted(
                    (i for i in s.issues.values() if i["project"] == p["key"]),
                    key=lambda i: -int(i["id"]),
                )
                for i in issues:
                    f = s.issue_fields(i)
                    who = (f["assignee"] or {}).get("displayName", "")
                    rows.append(
                        f"<tr><td><a href='/browse/{e(i['key'])}'>{e(i['key'])}</a></td>"
                        f"<td>{e(f['issuetype']['name'])}</td><td>{e(i['summary'])}</td>"
                        f"<td>{e(f['status']['name'])}</td><td>{e(f['priority']['name'])}</td>"
                        f"<td>{e(who)}</td><td>{e(f['updated'])}</td>"
                        f"<td>{len(i['comments'])}</td></tr>"
                    )
                rows.append("</table>")
            hooks = len(self.dispatcher.webhooks)
        body = "\n".join(rows)
        return _page(
            f"jirasim ({s.flavor})",
            f"<p>{s.flavor} site at {e(s.base_url)} · {hooks} webhook(s) · "
            f"<a href='/_sim/deliveries'>deliveries</a> · <a href='/_sim/calls'>calls</a> · "
            f"<a href='/_sim/faults'>faults</a></p>{body}",
        )

    def html_issue(self, key: str) -> str:
        s = self.store
        e = html.escape
        with s.lock:
            try:
                i = s.get_issue(key)
            except ApiError:
                return _page("Not found", f"<p>No issue {e(key)}.</p>")
            f = s.issue_fields(i)
            rows = []
            for name, val in (
                ("Type", f["issuetype"]["name"]),
                ("Status", f["status"]["name"]),
                ("Resolution", (f["resolution"] or {}).get("name", "Unresolved")),
                ("Priority", f["priority"]["name"]),
                ("Assignee", (f["assignee"] or {}).get("displayName", "Unassigned")),
                ("Reporter", (f["reporter"] or {}).get("displayName", "")),
                ("Labels", ", ".join(i["labels"])),
                ("Due", i["duedate"] or ""),
                ("Created", f["created"]),
                ("Updated", f["updated"]),
            ):
                rows.append(f"<tr><th>{e(name)}</th><td>{e(str(val))}</td></tr>")
            for fid, (fname, _, _) in CUSTOM_FIELDS.items():
                if i["custom"].get(fid) is not None:
                    rows.append(f"<tr><th>{e(fname)}</th><td>{e(str(i['custom'][fid]))}</td></tr>")
            if i["properties"]:
                rows.append(
                    f"<tr><th>Properties</th><td><code>{e(json.dumps(i['properties']))}</code></td></tr>"
                )
            comments = "".join(
                f"<div class='c'><b>{e(s.users[c['author']]['displayName'])}</b> "
                f"<small>{e(fmt_ts(c['created']))}</small><pre>{e(c['body'])}</pre></div>"
                for c in i["comments"]
            )
            history = "".join(
                f"<li>{e(fmt_ts(h['created']))}: "
                + ", ".join(
                    f"{e(it['field'])}: {e(str(it['fromString']))} → {e(str(it['toString']))}"
                    for it in h["items"]
                )
                + "</li>"
                for h in i["history"]
            )
            desc = e(i["description"] or "")
        return _page(
            f"{i['key']}: {i['summary']}",
            f"<p><a href='/'>← all issues</a></p><table>{''.join(rows)}</table>"
            f"<h3>Description</h3><pre>{desc}</pre><h3>Comments</h3>{comments or '<p>none</p>'}"
            f"<h3>History</h3><ul>{history}</ul>",
        )


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}.c{border-left:3px solid #0052cc;padding-left:8px;margin:8px 0}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
