"""Which unit an identifier names, whatever form it came in (pure).

The matching rule
-----------------
An EPC URI carries the length of the GS1 Company Prefix (``urn:epc:id:sgtin:0614141.107346.2017``
splits after 7 digits); a GS1 Digital Link, an element string or a bare SSCC does not, and the
GTIN or SSCC alone cannot tell it. So the same physical unit can be spelt as EPC URIs with
different splits. The platform therefore identifies a unit by its **prefix-free key**:

* SGTIN: ``(GTIN-14, serial)``;
* SSCC: the 18 digits.

Looking a unit up, the key is matched against ``units`` (unique indexes on both keys), and the
stored EPC URI is used from then on. A unit seen for the first time is stored under
:func:`coldchain.gs1.canonical_epc`: the prefix length of the EPC URI it came as, else the
default of 7 (``DEFAULT_COMPANY_PREFIX_LENGTH``). Because look-ups go by key, a later spelling
with another split still finds the same row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from coldchain.gs1 import IdentifierError, ParsedIdentifier, canonical_epc
from coldchain.gs1_parse import parse_identifier

__all__ = ["UnitKey", "claims_unit_key", "parse_unit"]

# An identifier that *says* it is an SGTIN or an SSCC: when such a one does not parse, that is an
# error in the data; any other identifier (GRAI, GIAI, SGLN, a class...) is simply not a unit we
# track.
_UNIT_URN = re.compile(r"^urn:epc:id:(sgtin|sscc):", re.IGNORECASE)
_UNIT_DIGITAL_LINK = re.compile(r"^https?://[^/?#]+(/[^?#]*)?/0[01]/", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UnitKey:
    """The prefix-free identity of a unit, the EPC URI to store it under if it is new, and
    whatever the identifier itself said about lot and expiry."""

    kind: Literal["sgtin", "sscc"]
    gtin: str | None
    serial: str | None
    sscc: str | None
    epc: str
    lot: str | None = None
    expiry: date | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(gtin, serial)`` or ``(sscc, "")``: hashable, prefix-free."""
        if self.kind == "sgtin":
            assert self.gtin is not None and self.serial is not None
            return (self.gtin, self.serial)
        assert self.sscc is not None
        return (self.sscc, "")


def claims_unit_key(text: str) -> bool:
    """True when ``text`` is written as an SGTIN/SSCC EPC URI or a GTIN/SSCC Digital Link."""
    stripped = text.strip()
    return bool(_UNIT_URN.match(stripped) or _UNIT_DIGITAL_LINK.match(stripped))


def from_parsed(parsed: ParsedIdentifier) -> UnitKey:
    """The unit key of a parsed SGTIN or SSCC; IdentifierError for a bare GTIN (a product)."""
    epc = canonical_epc(parsed)  # raises for kind "gtin"
    if parsed.kind == "sscc":
        return UnitKey("sscc", None, None, parsed.sscc, epc)
    return UnitKey(
        "sgtin", parsed.gtin, parsed.serial, None, epc, lot=parsed.lot, expiry=parsed.expiry
    )


def parse_unit(text: str, *, today: date) -> UnitKey:
    """Parse an SGTIN or SSCC in any supported form (EPC URI, Digital Link, element string as
    printed or as a scanner sends it, bare SSCC); IdentifierError says what is wrong."""
    parsed = parse_identifier(text, today=today)
    if parsed.kind == "gtin":
        raise IdentifierError(
            "this names a product (GTIN) but no serial: a unit needs GTIN + serial (21) or an SSCC"
        )
    return from_parsed(parsed)
