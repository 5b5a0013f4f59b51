"""Named SQL, one module per consumer. Every statement is parameterised."""
