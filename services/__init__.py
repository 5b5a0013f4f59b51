"""The operations the API, the dashboard and the CLI perform, each defined once.

A service function is what a person or a machine *does* with the platform: list the alerts,
acknowledge one, sign a disposition, register a product. It takes a connection (``conn``, from
the web pool or the CLI's own) and, when it changes something, the :class:`~services.caller.Caller`
who asks; it checks the caller's permission (:meth:`Caller.require`), puts the audit context on
the connection for the change (:func:`services.caller.acting`), runs the named queries of
:mod:`db.queries` (in one transaction where several statements must land together) and returns
plain rows or records. It knows nothing of HTTP, Dash or the terminal: a missing object raises
:class:`~coldchain.errors.NotFoundError`, a refused action one of the other errors of
:mod:`coldchain.errors`, and each edge turns those into a status code, a message on screen or
an exit code.

Reads that every role may make (the fleet, a shipment, its alerts and reports) take no caller:
the API and the dashboard have already authenticated the person. A restricted read takes one
like a write and checks it: the users and API keys (``admin``), the audit trail
(``audit.read``).

Layers (``tests/test_layers.py``): ``services`` sits above the stages (``db``, ``security``,
``alerts``, ``reports``, ``traceability`` …) and below ``dashboard``, ``api`` and
``launcher``, which call it and never :mod:`db.queries` directly.
"""
