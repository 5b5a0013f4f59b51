"""Track and trace: serialised units, their packing and custody over time, the temperature
passport each unit inherits from its containers, and EPCIS 2.0 in and out.

Named ``traceability`` rather than ``trace``: a top-level ``trace`` package would be shadowed by
the standard library's ``trace`` module wherever the repository root is not first on
``sys.path`` (the installed ``coldchain`` command, the Docker image).

Modules::

    identifiers    which unit an identifier names (the prefix-free matching rule)      pure
    passport       a unit's series, excursions, budget use and MKT                    pure
    verify         scan verdicts, impossible travel                                    pure
    epcis_schema   the official EPCIS 2.0 JSON schema, strict URI/date-time formats    pure
    epcis_import   validate and import EPCIS documents (one transaction each)
    epcis_export   EPCIS 2.0 JSON-LD of a shipment or a unit
    lookup         identifier -> passport / verdict / recall / lot impact (database edge)

Exceptions::

    coldchain.errors.ColdchainError (the whole tree is drawn in coldchain/errors.py)
    ├── EPCISRejected     a document refused whole, with every reason
    ├── IdentifierError   an identifier we cannot read (also a ValueError)
    └── NotFoundError     no such unit, lot or excursion
"""
