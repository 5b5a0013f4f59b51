"""Test configuration: the real services come from tests/fixtures/services.py."""

pytest_plugins = ["tests.fixtures.services"]
