"""GS1 identifiers of serialised units and logistic units: the keys and their formats.

Pure functions and frozen value objects (no I/O, no clock reads) for

- GTIN (AI 01), SGTIN = GTIN + serial (AI 21), SSCC (AI 00), with lot (AI 10) and expiry (AI 17);
- EPC pure identity URIs (GS1 EPC Tag Data Standard): ``urn:epc:id:sgtin:…``, ``urn:epc:id:sscc:…``
  and, for GTIN classes, ``urn:epc:idpat:sgtin:CP.IR.*`` and ``urn:epc:class:lgtin:CP.IR.Lot``;
- GS1 element strings: human readable ``(01)…(17)…(10)…(21)…`` and raw scanned data with FNC1
  sent as GS (ASCII 29) or a textual stand-in, optionally led by a symbology identifier (``]d2``);
- GS1 Digital Link URIs: ``https://id.gs1.org/01/{gtin}[/10/{lot}][/21/{serial}]?17=YYMMDD``.

The EPC URI needs the length of the GS1 Company Prefix, which the GTIN or SSCC does not carry.
It is taken from the EPC URI when the identifier came as one, else from the caller, else it
defaults to 7 (``DEFAULT_COMPANY_PREFIX_LENGTH``).

Reading any of these forms back into a :class:`ParsedIdentifier` is :mod:`coldchain.gs1_parse`;
the checks both halves share (:func:`check_key`, :func:`check_x20`, :func:`is_digits`,
``EPC_ESCAPES``) are here.

Exceptions::

    ValueError
    └── IdentifierError    anything malformed or invalid; the message names the part and why
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal
from urllib.parse import quote

from coldchain.errors import IdentifierError

__all__ = [
    "CSET82",
    "DEFAULT_COMPANY_PREFIX_LENGTH",
    "DIGITAL_LINK_BASE",
    "EPC_ESCAPES",
    "GTIN",
    "SGTIN",
    "SSCC",
    "IdentifierError",
    "IdentifierKind",
    "ParsedIdentifier",
    "canonical_epc",
    "check_digit",
    "check_key",
    "check_lot",
    "check_x20",
    "is_digits",
    "is_valid_gtin",
    "is_valid_sscc",
    "normalize_gtin",
]

#: GS1 AI encodable character set 82 (GS1 General Specifications), allowed in AI 10 and AI 21.
CSET82: Final = (
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
DEFAULT_COMPANY_PREFIX_LENGTH: Final = 7
DIGITAL_LINK_BASE: Final = "https://id.gs1.org"

IdentifierKind = Literal["sgtin", "sscc", "gtin"]

_CSET82_CHARS: Final = frozenset(CSET82)
_MAX_X20: Final = 20  # AI 10 and AI 21 are X..20
_HRI_AMBIGUOUS: Final = re.compile(r"\((?=\d{2,4}\))")

#: EPC URI (Tag Data Standard, annex A): these characters of set 82 are written as %-escapes.
EPC_ESCAPES: Final = {
    '"': "%22",
    "%": "%25",
    "&": "%26",
    "/": "%2F",
    "<": "%3C",
    ">": "%3E",
    "?": "%3F",
}


# --- check digits and keys ---------------------------------------------------------------------


def is_digits(text: str) -> bool:
    """Whether ``text`` is only ASCII digits 0-9 (``str.isdigit`` alone accepts "²" and others)."""
    return text.isascii() and text.isdigit()


def _first_non_digit(text: str) -> str:
    return next(c for c in text if not ("0" <= c <= "9"))


def check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit of ``body`` (weights 3,1,3,1… from the right)."""
    if not body or not is_digits(body):
        raise IdentifierError(f"check digit needs a body of digits 0-9, got {body!r}")
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def check_key(value: str, name: str, length: int) -> None:
    """Check a GS1 key (GTIN-14, SSCC) of ``length`` digits and its check digit; the error
    names the key as ``name``."""
    if not is_digits(value) and value:
        bad = _first_non_digit(value)
        raise IdentifierError(f"{name} must contain only digits 0-9, found {bad!r}")
    if len(value) != length:
        raise IdentifierError(f"{name} must be {length} digits, got {len(value)}")
    expected = check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise IdentifierError(f"{name} check digit is {value[-1]}, expected {expected}")


def normalize_gtin(text: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as GTIN-14 (left-padded with zeros)."""
    if not is_digits(text) and text:
        raise IdentifierError(
            f"GTIN must contain only digits 0-9, found {_first_non_digit(text)!r}"
        )
    if len(text) not in (8, 12, 13, 14):
        raise IdentifierError(f"GTIN must be 8, 12, 13 or 14 digits, got {len(text)}")
    gtin = text.zfill(14)
    check_key(gtin, "GTIN", 14)
    return gtin


def is_valid_gtin(text: str) -> bool:
    """Tell whether ``text`` is a GTIN-8/12/13/14 of digits with a correct check digit."""
    try:
        normalize_gtin(text)
    except IdentifierError:
        return False
    return True


def is_valid_sscc(text: str) -> bool:
    """Tell whether ``text`` is an 18-digit SSCC with a correct check digit."""
    try:
        check_key(text, "SSCC", 18)
    except IdentifierError:
        return False
    return True


def check_x20(value: str, name: str) -> None:
    """Check a serial or lot: 1–20 characters of GS1 AI encodable character set 82."""
    if not value:
        raise IdentifierError(f"{name} is empty; it needs 1 to {_MAX_X20} characters")
    for c in value:
        if c not in _CSET82_CHARS:
            raise IdentifierError(
                f"{name} contains {c!r} which is not in GS1 AI encodable character set 82"
            )
    if len(value) > _MAX_X20:
        raise IdentifierError(f"{name} is {len(value)} characters long; at most {_MAX_X20}")


def check_lot(text: str) -> str:
    """Validate a lot or batch number (AI 10: 1–20 characters of set 82) and return it."""
    check_x20(text, "lot")
    return text


def _check_prefix_length(company_prefix_length: int) -> None:
    if isinstance(company_prefix_length, bool) or company_prefix_length not in range(6, 13):
        raise IdentifierError(
            f"company prefix length must be 6 to 12, got {company_prefix_length!r}"
        )


# --- formatting helpers ------------------------------------------------------------------------


def _epc_escape(value: str) -> str:
    return "".join(EPC_ESCAPES.get(c, c) for c in value)


def _hri_escape(value: str) -> str:
    # A "(" that would read as the start of an AI is written "\(", the bracketed-AI escape of the
    # GS1 Barcode Syntax Engine ("\" is outside set 82, so it cannot clash with data).
    return _HRI_AMBIGUOUS.sub(r"\\(", value)


def _dl_escape(value: str) -> str:
    # Digital Link: every character of set 82 except letters, digits, "-", "." and "_" is
    # percent-encoded, which is exactly what quote() does with no safe characters.
    return quote(value, safe="")


# --- value types -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GTIN:
    """A GTIN-14 (AI 01); build one from GTIN-8/12/13 with :meth:`GTIN.parse`."""

    value: str

    def __post_init__(self) -> None:
        check_key(self.value, "GTIN", 14)

    @classmethod
    def parse(cls, text: str) -> GTIN:
        """Build from a GTIN-8/12/13/14, normalised to GTIN-14."""
        return cls(normalize_gtin(text))

    def __str__(self) -> str:
        return self.value

    def _partition(self, company_prefix_length: int) -> tuple[str, str]:
        """Split into (company prefix, indicator digit + item reference) as the EPC URI does."""
        _check_prefix_length(company_prefix_length)
        cut = 1 + company_prefix_length
        return self.value[1:cut], self.value[0] + self.value[cut:13]

    @property
    def element_string(self) -> str:
        """Human readable element string ``(01){gtin}``."""
        return f"(01){self.value}"

    @property
    def digital_link(self) -> str:
        """GS1 Digital Link URI on id.gs1.org."""
        return f"{DIGITAL_LINK_BASE}/01/{self.value}"

    def epc_pattern_uri(self, company_prefix_length: int = DEFAULT_COMPANY_PREFIX_LENGTH) -> str:
        """EPC pattern URI for every serial of this GTIN (``urn:epc:idpat:sgtin:CP.IR.*``)."""
        prefix, item = self._partition(company_prefix_length)
        return f"urn:epc:idpat:sgtin:{prefix}.{item}.*"


@dataclass(frozen=True, slots=True)
class SGTIN:
    """A serialised trade item: GTIN (AI 01) plus serial (AI 21, 1–20 chars of set 82)."""

    gtin: GTIN
    serial: str

    def __post_init__(self) -> None:
        if not isinstance(self.gtin, GTIN):
            raise IdentifierError(
                f"SGTIN needs a GTIN object, got {type(self.gtin).__name__}; use GTIN.parse()"
            )
        check_x20(self.serial, "serial")

    def epc_uri(self, company_prefix_length: int = DEFAULT_COMPANY_PREFIX_LENGTH) -> str:
        """EPC pure identity URI ``urn:epc:id:sgtin:CompanyPrefix.IndicatorItemRef.Serial``."""
        prefix, item = self.gtin._partition(company_prefix_length)
        return f"urn:epc:id:sgtin:{prefix}.{item}.{_epc_escape(self.serial)}"

    @property
    def element_string(self) -> str:
        """Human readable ``(01){gtin}(21){serial}``; a ``(NN)`` in the serial is written ``\\(NN)``."""
        return f"(01){self.gtin.value}(21){_hri_escape(self.serial)}"

    @property
    def digital_link(self) -> str:
        """GS1 Digital Link URI on id.gs1.org, serial percent-encoded."""
        return f"{DIGITAL_LINK_BASE}/01/{self.gtin.value}/21/{_dl_escape(self.serial)}"


@dataclass(frozen=True, slots=True)
class SSCC:
    """A Serial Shipping Container Code (AI 00, 18 digits)."""

    value: str

    def __post_init__(self) -> None:
        check_key(self.value, "SSCC", 18)

    def __str__(self) -> str:
        return self.value

    def epc_uri(self, company_prefix_length: int = DEFAULT_COMPANY_PREFIX_LENGTH) -> str:
        """EPC pure identity URI ``urn:epc:id:sscc:CompanyPrefix.ExtensionSerialRef``."""
        _check_prefix_length(company_prefix_length)
        cut = 1 + company_prefix_length
        return f"urn:epc:id:sscc:{self.value[1:cut]}.{self.value[0]}{self.value[cut:17]}"

    @property
    def element_string(self) -> str:
        """Human readable element string ``(00){sscc}``."""
        return f"(00){self.value}"

    @property
    def digital_link(self) -> str:
        """GS1 Digital Link URI on id.gs1.org."""
        return f"{DIGITAL_LINK_BASE}/00/{self.value}"


@dataclass(frozen=True, slots=True)
class ParsedIdentifier:
    """What a parser found: one unit (sgtin), one logistic unit (sscc) or a product (gtin).

    ``gtin`` is always GTIN-14. ``lot`` and ``expiry`` come from AI 10 and AI 17 when present.
    ``company_prefix_length`` is known only when the input was an EPC URI. An element string
    with an SSCC (00) is kind ``sscc`` even if it also carries (01), (10) or (17).
    """

    kind: IdentifierKind
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None
    lot: str | None = None
    expiry: date | None = None
    company_prefix_length: int | None = None

    def __post_init__(self) -> None:
        if self.kind == "sscc":
            consistent = self.sscc is not None
        elif self.kind == "sgtin":
            consistent = self.gtin is not None and self.serial is not None
        elif self.kind == "gtin":
            consistent = self.gtin is not None and self.serial is None
        else:
            raise IdentifierError(f"kind must be 'sgtin', 'sscc' or 'gtin', got {self.kind!r}")
        if not consistent:
            raise IdentifierError(f"fields do not fit kind {self.kind!r}: {self!r}")


def canonical_epc(parsed: ParsedIdentifier, *, company_prefix_length: int | None = None) -> str:
    """The one EPC URI under which an SGTIN or SSCC is stored.

    The company prefix length is ``company_prefix_length`` if given, else the one read from the
    EPC URI the identifier came in, else ``DEFAULT_COMPANY_PREFIX_LENGTH``. A bare GTIN (kind
    ``gtin``) names a product, not a unit, and has no EPC instance URI: IdentifierError.
    """
    if company_prefix_length is not None:
        length = company_prefix_length
    elif parsed.company_prefix_length is not None:
        length = parsed.company_prefix_length
    else:
        length = DEFAULT_COMPANY_PREFIX_LENGTH
    if parsed.kind == "sscc" and parsed.sscc is not None:
        return SSCC(parsed.sscc).epc_uri(length)
    if parsed.kind == "sgtin" and parsed.gtin is not None and parsed.serial is not None:
        return SGTIN(GTIN(parsed.gtin), parsed.serial).epc_uri(length)
    raise IdentifierError(
        f"a {parsed.kind!r} identifier has no EPC instance URI; only an SGTIN (GTIN + serial) "
        "or an SSCC has one"
    )
