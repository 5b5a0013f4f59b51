"""The services' fixtures (a web-process connection, callers of every role), shared."""

from tests.services.conftest import caller, callers, conn

__all__ = ["caller", "callers", "conn"]
