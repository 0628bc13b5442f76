"""REST routes on an issue's comments: list, add, get, edit, delete."""

from __future__ import annotations

from .request import Request, Response, paged


class CommentRoutes:
    """``/rest/api/{2,3}/issue/{key}/comment...`` (mixed into :class:`jirasim.app.App`)."""

    def comments_list(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue = s.get_issue(req.params["key"])
            expand = (req.q("expand") or "").split(",")
            comments = [
                s.comment_json(issue, c, req.version, properties="properties" in expand)
                for c in issue["comments"]
            ]
        if req.q("orderBy", "created").startswith("-"):
            comments.reverse()
        return paged(req, "comments", comments, s.options.comment_page_size or 5000)

    def comment_add(self, req: Request) -> Response:
        s = self.store
        issue, c = s.add_comment(
            actor=req.user, key=req.params["key"], body=req.json(), version=req.version
        )
        with s.lock:
            return Response(201, s.comment_json(issue, c, req.version))

    def comment_get(self, req: Request) -> Response:
        s = self.store
        with s.lock:
            issue, c = s.get_comment(req.params["key"], req.params["cid"])
            return Response(200, s.comment_json(issue, c, req.version))

    def comment_edit(self, req: Request) -> Response:
        s = self.store
        issue, c = s.edit_comment(
            actor=req.user,
            key=req.params["key"],
            cid=req.params["cid"],
            body=req.json(),
            version=req.version,
        )
        with s.lock:
            return Response(200, s.comment_json(issue, c, req.version))

    def comment_delete(self, req: Request) -> Response:
        self.store.delete_comment(actor=req.user, key=req.params["key"], cid=req.params["cid"])
        return Response(204)
