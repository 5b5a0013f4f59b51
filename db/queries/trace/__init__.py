"""Track and trace queries, one module per resource: :mod:`.containment` (units by key, the
containment walk), :mod:`.recalls` (recall and impact, recalls, verification facts),
:mod:`.epcis_store` (EPCIS import) and :mod:`.epcis_export`.

Keyword-only functions, parameterised SQL, dict rows (:data:`db.types.Conn`). Nothing here knows
about HTTP, Dash or the CLI.
"""
