"""Project versions created over REST, as Jira's ``POST /rest/api/{2|3}/version`` does it.

The body names the version (``name``) and its project, by ``projectId`` (Cloud's documented
way; Data Center takes it too) or by ``project`` (the key; accepted by both). Creating a
version needs the Administer Projects permission (here: a site admin); a name the project
already has (case-insensitive, as Jira compares) is refused with 400. Release state and
dates are stored as sent and shown, nothing more. Like Jira, no issue event is fired: a
version event (``jira:version_created``) is not among the events this simulator delivers.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError

NAME_LIMIT = 255


class VersionOpsMixin:
    """Version resources (mixed into :class:`jirasim.store.Store`)."""

    def _version_project(self, body: dict) -> dict:
        ref = body.get("projectId")
        if ref is None:
            ref = body.get("project")
        if ref is None or str(ref).strip() == "":
            raise ApiError(
                400, errors={"project": "Project must be specified to create a version."}
            )
        for proj in self.projects.values():
            if str(ref) == proj["id"] or str(ref).upper() == proj["key"]:
                return proj
        raise ApiError(404, errors={"project": f"Project with id or key '{ref}' does not exist."})

    def create_version(self, *, actor: dict, body: Any) -> tuple[dict, dict]:
        """A new version in its project: (the project, the version)."""
        if not isinstance(body, dict):
            raise ApiError(400, ["The request body must be a JSON object."])
        with self.lock:
            proj = self._version_project(body)
            if not actor.get("admin"):
                raise ApiError(
                    403,
                    [
                        "You must have global or project administrator rights in order to "
                        "create versions."
                    ],
                )
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, errors={"name": "You must specify a valid version name"})
            name = name.strip()
            if len(name) > NAME_LIMIT:
                raise ApiError(
                    400, errors={"name": "The version name must not exceed 255 characters."}
                )
            if any(v["name"].lower() == name.lower() for v in proj["versions"]):
                raise ApiError(
                    400, errors={"name": "A version with this name already exists in this project."}
                )
            version = {
                "id": self._next("version"),
                "name": name,
                "description": str(body.get("description") or ""),
                "archived": bool(body.get("archived", False)),
                "released": bool(body.get("released", False)),
            }
            for date in ("releaseDate", "startDate"):
                if body.get(date):
                    version[date] = str(body[date])
            proj["versions"].append(version)
            return proj, version

    def find_version(self, version_id: str) -> tuple[dict, dict]:
        with self.lock:
            for proj in self.projects.values():
                for v in proj["versions"]:
                    if v["id"] == str(version_id):
                        return proj, v
        raise ApiError(404, [f"Could not find version for id '{version_id}'"])
