"""The API's documentation pages, served from this app's own files so they work offline.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN: on a site without internet access
(a warehouse network, a validated environment) it is a blank page. Here Swagger UI (at
``/api/docs``) comes from the assets the ``fastapi-offline`` package ships (Swagger UI 5, which
reads the OpenAPI 3.1 document FastAPI writes; Apache-2.0, the package MIT, pinned in
``requirements.lock``), mounted under ``/api/docs/assets``. ReDoc, which the package ships too,
is not offered: its page fetches its maker's logo from the internet.

The pages carry no inline script: Swagger UI is started by ``api/static/swagger-init.js``, which
reads the document's URL from a ``data-`` attribute, so the pages can have a strict
Content-Security-Policy (scripts from this origin only).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/api/docs"
ASSETS_URL = "/api/docs/assets"
OWN_ASSETS_URL = "/api/docs/init"

#: The Swagger UI bundle, as the package ships it.
VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
#: Our own start-up script (no inline scripts: see the module docstring).
OWN = Path(__file__).resolve().parent / "static"

#: Scripts and styles from this origin only; Swagger UI sets inline styles and draws a few
#: icons as data: images.
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def swagger_page(title: str, openapi_url: str) -> str:
    """Swagger UI's page (pure): the bundle, its style sheet and our start-up script."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} · API docs</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{OWN_ASSETS_URL}/swagger-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve the documentation pages and their assets (create the app with ``docs_url=None``)."""
    openapi_url = app.openapi_url or "/api/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=VENDOR), name="api-docs-assets")
    app.mount(OWN_ASSETS_URL, StaticFiles(directory=OWN), name="api-docs-init")

    @app.api_route(DOCS_URL, methods=["GET", "HEAD"], include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_page(app.title, openapi_url), headers=HEADERS)
