"""One router per resource; :mod:`api.app` includes them under ``/api/v1``."""
