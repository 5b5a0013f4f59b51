"""Asking the platform in plain words (issue 17): the answer's shape, and the pure parts of
understanding a question (intents, entities, dates)."""
