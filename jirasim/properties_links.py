"""Issue entity properties and remote links: stored as sent, no events."""

from __future__ import annotations

from typing import Any

from .errors import ApiError


class PropertiesLinksMixin:
    """Properties and remote links on issues (mixed into :class:`jirasim.store.Store`)."""

    def set_property(self, key: str, prop: str, value: Any) -> bool:
        with self.lock:
            issue = self.get_issue(key)
            if len(prop) > 255:
                raise ApiError(400, ["The property key can not be longer than 255 characters."])
            existed = prop in issue["properties"]
            issue["properties"][prop] = value
            return existed

    def delete_property(self, key: str, prop: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            if prop not in issue["properties"]:
                raise ApiError(404, [f"Property with key not found: {prop}"])
            del issue["properties"][prop]

    def add_remote_link(self, key: str, body: dict) -> tuple[dict, bool]:
        with self.lock:
            issue = self.get_issue(key)
            obj = body.get("object") if isinstance(body, dict) else None
            if not isinstance(obj, dict) or not obj.get("url") or not obj.get("title"):
                errors = {}
                if not isinstance(obj, dict) or not obj.get("url"):
                    errors["url"] = "'url' is a required field."
                if not isinstance(obj, dict) or not obj.get("title"):
                    errors["title"] = "'title' is a required field."
                raise ApiError(400, errors=errors)
            gid = body.get("globalId")
            if gid:
                for link in issue["remotelinks"]:
                    if link.get("globalId") == gid:
                        link.update({k: v for k, v in body.items() if k != "id"})
                        return link, False
            link = {"id": int(self._next("link")), **body}
            issue["remotelinks"].append(link)
            return link, True

    def delete_remote_link(self, key: str, link_id: str) -> None:
        with self.lock:
            issue = self.get_issue(key)
            for link in issue["remotelinks"]:
                if str(link["id"]) == str(link_id):
                    issue["remotelinks"].remove(link)
                    return
            raise ApiError(404, ["No remote link with the given id."])
