"""Request size limits, checked before any byte of the body is read.

Every POST must declare its Content-Length (curl, httpx and browsers do), so an oversized
upload is refused at once instead of after it has filled a disk; the HTTP server already
refuses a body longer than its declared length.
"""

from __future__ import annotations

import json

DEFAULT_BODY_LIMIT = 1 << 20  # metrics and game requests are a few kilobytes
MODEL_UPLOAD_PATH = "/training/models"
BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyLimit:
    """ASGI middleware: 411 without a Content-Length, 413 beyond the limit for the path."""

    def __init__(self, app, model_limit: int, default_limit: int = DEFAULT_BODY_LIMIT):
        self.app = app
        self.model_limit = model_limit
        self.default_limit = default_limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.model_limit if scope["path"] == MODEL_UPLOAD_PATH else self.default_limit
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is None:
            if headers.get(b"transfer-encoding"):
                await _refuse(
                    send, 411, "send the body with a Content-Length header (chunked uploads are not accepted)"
                )
                return
            declared = b"0"
        if not declared.isdigit():
            await _refuse(send, 400, "malformed Content-Length header")
            return
        if int(declared) > limit:
            await _refuse(send, 413, f"request body of {int(declared)} bytes is over the limit of {limit} bytes here")
            return
        await self.app(scope, receive, send)


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
