"""The Dash dashboard of the web process; :func:`dashboard.app.create_dash` builds it."""
