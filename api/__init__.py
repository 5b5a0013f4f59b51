"""The HTTP API (FastAPI) of the web process; :func:`api.app.create_app` also mounts the dashboard."""
