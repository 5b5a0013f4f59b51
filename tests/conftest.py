"""Test configuration: the real services come from tests/fixtures/."""

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.web", "tests.fixtures.mail"]
