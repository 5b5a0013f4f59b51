"""The schema (numbered migrations) and the named queries every stage uses."""
