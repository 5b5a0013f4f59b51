"""Read GS1 identifiers from text in any of their forms (pure: no I/O, no clock reads).

The other half of :mod:`coldchain.gs1`, which holds the keys, the value objects and their
formats: here the same identifiers are parsed from

- EPC pure identity URIs (``urn:epc:id:sgtin:…``, ``urn:epc:id:sscc:…``, GTIN classes);
- GS1 element strings, human readable ``(01)…(21)…`` or raw scanned data with FNC1 sent as GS
  (ASCII 29) or a textual stand-in, optionally led by a symbology identifier (``]d2``);
- GS1 Digital Link URIs (``https://id.gs1.org/01/{gtin}[/10/{lot}][/21/{serial}]?17=YYMMDD``);

and :func:`parse_identifier` takes any of them. Every parser returns a
:class:`~coldchain.gs1.ParsedIdentifier` or raises :class:`~coldchain.errors.IdentifierError`
naming the part that is wrong and why; ``today`` fixes the century of a YYMMDD date.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from string import hexdigits
from typing import Final
from urllib.parse import unquote_to_bytes, urlsplit

from coldchain.errors import IdentifierError
from coldchain.gs1 import (
    EPC_ESCAPES,
    IdentifierKind,
    ParsedIdentifier,
    check_digit,
    check_key,
    check_x20,
    is_digits,
    normalize_gtin,
)

__all__ = [
    "parse_digital_link",
    "parse_element_string",
    "parse_epc_uri",
    "parse_identifier",
    "parse_yymmdd",
]

_GS: Final = "\x1d"

# Symbology identifiers whose data is a GS1 element string (FNC1 in first position).
_GS1_SYMBOLOGY_IDS: Final = frozenset({"]C1", "]d2", "]e0", "]J1", "]Q3"})

# Textual stand-ins for FNC1/GS that scanners, keyboard wedges and copy-paste produce.
_GS_STAND_INS: Final = re.compile(r"<GS>|\[GS\]|\{GS\}|\\x1d|\\u001d|\^\]|\u241d", re.IGNORECASE)

# AI length by its first two digits: every AI with the same two leading digits has the same
# length (GS1 General Specifications; table as in the GS1 Barcode Syntax Engine).
_AI_LENGTH_BY_PREFIX: Final[dict[str, int]] = {
    **dict.fromkeys(("00", "01", "02", "03", "10", "11", "12", "13", "15", "16", "17"), 2),
    **dict.fromkeys(("20", "21", "22", "30", "37"), 2),
    **dict.fromkeys((f"9{d}" for d in "0123456789"), 2),
    **dict.fromkeys(("23", "24", "25", "40", "41", "42", "71"), 3),
    **dict.fromkeys(("31", "32", "33", "34", "35", "36", "39", "43", "70", "72"), 4),
    **dict.fromkeys(("80", "81", "82"), 4),
}

# Data length of the AIs that need no FNC1 after them ("predefined length" table, which GS1
# has frozen); all other AIs run to the next FNC1/GS or to the end of the data.
_PREDEFINED_DATA_LENGTH: Final[dict[str, int]] = {
    "00": 18,
    "01": 14,
    "02": 14,
    "03": 14,
    "04": 16,
    **dict.fromkeys(("11", "12", "13", "14", "15", "16", "17", "18", "19"), 6),
    "20": 2,
    **dict.fromkeys(("31", "32", "33", "34", "35", "36"), 6),
    "41": 13,
}

# Digital Link primary keys other than GTIN and SSCC, named in the "not supported" error.
_OTHER_DL_KEYS: Final = {
    "253": "GDTI",
    "255": "GCN",
    "401": "GINC",
    "402": "GSIN",
    "414": "GLN",
    "417": "party GLN",
    "8003": "GRAI",
    "8004": "GIAI",
    "8006": "ITIP",
    "8010": "CPID",
    "8013": "GMN",
    "8017": "GSRN-P",
    "8018": "GSRN",
}
_DL_ALPHAS: Final = {"gtin": "01", "sscc": "00", "lot": "10", "ser": "21", "exp": "17"}

_HRI_AI: Final = re.compile(r"\((\d{2,4})\)")
_MALFORMED_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


# --- dates -------------------------------------------------------------------------------------


def parse_yymmdd(value: str, *, today: date) -> date:
    """Read a GS1 date YYMMDD; DD=00 means the month's last day.

    The century follows GS1 General Specifications 7.12: a year more than 50 years ahead of
    ``today`` is in the previous century, one 50 or more years behind is in the next one, so
    the result lies between 49 years before and 50 years after ``today``'s year.
    """
    if len(value) != 6 or not is_digits(value):
        raise IdentifierError(f"date must be 6 digits YYMMDD, got {value!r}")
    yy, mm, dd = int(value[:2]), int(value[2:4]), int(value[4:])
    century = today.year // 100
    difference = yy - today.year % 100
    if difference >= 51:
        century -= 1
    elif difference <= -50:
        century += 1
    year = century * 100 + yy
    if not 1 <= mm <= 12:
        raise IdentifierError(f"date {value!r}: month must be 01 to 12, got {value[2:4]}")
    if not 1 <= year <= 9999:
        raise IdentifierError(f"date {value!r}: year {year} is out of range")
    last_day = calendar.monthrange(year, mm)[1]
    if dd == 0:
        dd = last_day
    elif dd > last_day:
        raise IdentifierError(f"date {value!r}: day {value[4:]} does not exist in {year}-{mm:02d}")
    return date(year, mm, dd)


# --- EPC URIs ----------------------------------------------------------------------------------


def _epc_unescape(text: str, name: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            hex_pair = text[i + 1 : i + 3]
            if len(hex_pair) != 2 or any(h not in hexdigits for h in hex_pair):
                raise IdentifierError(
                    f"{name} has a malformed escape {text[i : i + 3]!r}; write '%' as %25"
                )
            out.append(chr(int(hex_pair, 16)))
            i += 3
            continue
        if c in EPC_ESCAPES:
            raise IdentifierError(
                f"{name} contains {c!r}, which an EPC URI must escape as {EPC_ESCAPES[c]}"
            )
        out.append(c)
        i += 1
    return "".join(out)


def _split_gtin_epc(body: str, scheme: str) -> tuple[str, int, str]:
    """Read ``CompanyPrefix.IndicatorItemRef.Rest``; return (GTIN-14, prefix length, Rest)."""
    parts = body.split(".", 2)
    if len(parts) != 3:
        raise IdentifierError(
            f"{scheme} EPC URI needs CompanyPrefix.IndicatorItemRef.Serial, got {body!r}"
        )
    prefix, item, rest = parts
    for part, name in ((prefix, "company prefix"), (item, "indicator/item reference")):
        if not part or not is_digits(part):
            raise IdentifierError(f"{scheme} EPC URI {name} must be digits, got {part!r}")
    if not 6 <= len(prefix) <= 12:
        raise IdentifierError(
            f"{scheme} EPC URI company prefix must be 6 to 12 digits, got {len(prefix)}"
        )
    if len(prefix) + len(item) != 13:
        raise IdentifierError(
            f"{scheme} EPC URI company prefix and indicator/item reference must total 13 digits, "
            f"got {len(prefix)} + {len(item)}"
        )
    body13 = item[0] + prefix + item[1:]
    return body13 + str(check_digit(body13)), len(prefix), rest


def parse_epc_uri(uri: str) -> ParsedIdentifier:
    """Parse an EPC pure identity URI for an SGTIN or SSCC.

    Also accepted, as kind ``gtin``: ``urn:epc:idpat:sgtin:CP.IR.*`` (all serials of one GTIN)
    and ``urn:epc:class:lgtin:CP.IR.Lot`` (one lot of one GTIN), which EPCIS uses for classes.
    """
    text = uri.strip()
    lowered = text.lower()
    if lowered.startswith("urn:epc:id:sgtin:"):
        gtin, length, raw_serial = _split_gtin_epc(text[17:], "SGTIN")
        serial = _epc_unescape(raw_serial, "SGTIN EPC URI serial")
        check_x20(serial, "serial")
        return ParsedIdentifier(
            kind="sgtin", gtin=gtin, serial=serial, company_prefix_length=length
        )
    if lowered.startswith("urn:epc:id:sscc:"):
        return _parse_sscc_epc(text[16:])
    if lowered.startswith("urn:epc:idpat:sgtin:"):
        gtin, length, rest = _split_gtin_epc(text[20:], "SGTIN pattern")
        if rest != "*":
            raise IdentifierError(f"SGTIN pattern EPC URI must end in '.*', got {rest!r}")
        return ParsedIdentifier(kind="gtin", gtin=gtin, company_prefix_length=length)
    if lowered.startswith("urn:epc:class:lgtin:"):
        gtin, length, raw_lot = _split_gtin_epc(text[20:], "LGTIN")
        lot = _epc_unescape(raw_lot, "LGTIN EPC class URI lot")
        check_x20(lot, "lot")
        return ParsedIdentifier(kind="gtin", gtin=gtin, lot=lot, company_prefix_length=length)
    if lowered.startswith("urn:epc:tag:"):
        raise IdentifierError(
            "EPC tag URIs (urn:epc:tag:…) are not supported; give the pure identity URI"
        )
    scheme = ":".join(text.split(":")[:4])
    raise IdentifierError(
        f"not an SGTIN or SSCC EPC URI: expected urn:epc:id:sgtin: or urn:epc:id:sscc:, "
        f"got {scheme!r}"
    )


def _parse_sscc_epc(body: str) -> ParsedIdentifier:
    parts = body.split(".")
    if len(parts) != 2:
        raise IdentifierError(f"SSCC EPC URI needs CompanyPrefix.ExtensionSerialRef, got {body!r}")
    prefix, serial_ref = parts
    for part, name in ((prefix, "company prefix"), (serial_ref, "extension/serial reference")):
        if not part or not is_digits(part):
            raise IdentifierError(f"SSCC EPC URI {name} must be digits, got {part!r}")
    if not 6 <= len(prefix) <= 12:
        raise IdentifierError(
            f"SSCC EPC URI company prefix must be 6 to 12 digits, got {len(prefix)}"
        )
    if len(prefix) + len(serial_ref) != 17:
        raise IdentifierError(
            "SSCC EPC URI company prefix and extension/serial reference must total 17 digits, "
            f"got {len(prefix)} + {len(serial_ref)}"
        )
    body17 = serial_ref[0] + prefix + serial_ref[1:]
    sscc = body17 + str(check_digit(body17))
    return ParsedIdentifier(kind="sscc", sscc=sscc, company_prefix_length=len(prefix))


# --- element strings ---------------------------------------------------------------------------


def _ai_code_length(ai_prefix: str) -> int:
    length = _AI_LENGTH_BY_PREFIX.get(ai_prefix)
    if length is None:
        raise IdentifierError(f"no GS1 Application Identifier starts with {ai_prefix!r}")
    return length


def _split_bracketed(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] in (_GS, " "):
            pos += 1
            continue
        match = _HRI_AI.match(text, pos)
        if match is None:
            raise IdentifierError(
                f"element string: expected '(AI)' at position {pos}, found {text[pos : pos + 8]!r}"
            )
        ai = match.group(1)
        if _ai_code_length(ai[:2]) != len(ai):
            raise IdentifierError(f"element string: ({ai}) is not a GS1 Application Identifier")
        pos = match.end()
        value: list[str] = []
        while pos < end and text[pos] != _GS:
            if text.startswith("\\(", pos):
                value.append("(")
                pos += 2
                continue
            if text[pos] == "(" and _HRI_AI.match(text, pos):
                break
            value.append(text[pos])
            pos += 1
        # Printed HRI often has spaces around the brackets; a space is not in set 82.
        pairs.append((ai, "".join(value).strip(" ")))
    return pairs


def _split_raw(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == _GS:
            pos += 1
            continue
        prefix = text[pos : pos + 2]
        if len(prefix) < 2 or not is_digits(prefix):
            raise IdentifierError(
                f"element string: expected an AI at position {pos}, found {text[pos : pos + 8]!r}"
            )
        ai_length = _ai_code_length(prefix)
        ai = text[pos : pos + ai_length]
        if len(ai) < ai_length or not is_digits(ai):
            raise IdentifierError(f"element string: AI {ai!r} at position {pos} is incomplete")
        pos += ai_length
        data_length = _PREDEFINED_DATA_LENGTH.get(prefix)
        if data_length is None:
            stop = text.find(_GS, pos)
            stop = end if stop == -1 else stop
        else:
            stop = pos + data_length
            if stop > end or _GS in text[pos:stop]:
                got = len(text[pos:stop].split(_GS)[0])
                raise IdentifierError(
                    f"AI ({ai}) is fixed length, {data_length} characters, but has {got}"
                )
        pairs.append((ai, text[pos:stop]))
        pos = stop
    return pairs


_AI_CHECKS: Final[dict[str, Callable[[str], None]]] = {
    "00": lambda value: check_key(value, "SSCC", 18),
    "01": lambda value: check_key(value, "GTIN", 14),
    "10": lambda value: check_x20(value, "lot"),
    "21": lambda value: check_x20(value, "serial"),
}


def _from_ai_pairs(pairs: list[tuple[str, str]], *, today: date) -> ParsedIdentifier:
    seen: dict[str, str] = {}
    for ai, value in pairs:
        if ai in seen and seen[ai] != value:
            raise IdentifierError(
                f"AI ({ai}) appears twice with different values {seen[ai]!r} and {value!r}"
            )
        seen[ai] = value
    for ai, value in seen.items():
        check = _AI_CHECKS.get(ai)
        if check is not None:
            try:
                check(value)
            except IdentifierError as error:
                raise IdentifierError(f"AI ({ai}): {error}") from None
        elif ai == "17":
            continue  # read below
        elif not value:
            raise IdentifierError(f"AI ({ai}) has no data")
        elif (length := _PREDEFINED_DATA_LENGTH.get(ai[:2])) and len(value) != length:
            raise IdentifierError(
                f"AI ({ai}) is fixed length, {length} characters, but has {len(value)}"
            )
    expiry = None
    if "17" in seen:
        try:
            expiry = parse_yymmdd(seen["17"], today=today)
        except IdentifierError as error:
            raise IdentifierError(f"AI (17) expiry: {error}") from None
    sscc, gtin, serial = seen.get("00"), seen.get("01"), seen.get("21")
    if serial is not None and gtin is None:
        raise IdentifierError("serial (21) without a GTIN (01): a serial belongs to a GTIN")
    if sscc is None and gtin is None:
        found = ", ".join(f"({ai})" for ai in seen) or "nothing"
        raise IdentifierError(f"no GTIN (01) or SSCC (00) in the element string; found {found}")
    kind: IdentifierKind = "sscc" if sscc is not None else "sgtin" if serial else "gtin"
    return ParsedIdentifier(
        kind=kind, gtin=gtin, serial=serial, sscc=sscc, lot=seen.get("10"), expiry=expiry
    )


def parse_element_string(text: str, *, today: date) -> ParsedIdentifier:
    """Parse a GS1 element string, human readable or as scanned.

    Human readable: ``(01)09521234543213(17)270131(10)AB-12(21)X1``; spaces around the brackets
    are allowed. Inside a value, an unescaped ``(NN)`` with 2 to 4 digits is read as the next AI;
    write it ``\\(NN)`` (the bracketed-AI escape of the GS1 Barcode Syntax Engine) to keep it.

    Scanned: ``01095212345432131727013110AB-12<GS>21X1`` with FNC1 sent as GS (ASCII 29) or a
    stand-in (``<GS>``, ``[GS]``, ``{GS}``, ``\\x1d``, ``\\u001d``, ``^]``, ``␝``; a value that
    itself contains ``<GS>`` is misread), optionally led by a GS1 symbology identifier (``]C1``,
    ``]d2``, ``]e0``, ``]J1``, ``]Q3``).

    AIs other than 00, 01, 10, 17 and 21 are checked for syntax and ignored. ``today`` fixes the
    century of the expiry date.
    """
    data = text.strip(" \t\r\n")
    if data.startswith("]"):
        symbology = data[:3]
        if symbology not in _GS1_SYMBOLOGY_IDS:
            raise IdentifierError(
                f"symbology identifier {symbology!r} does not announce GS1 element string data "
                f"(expected one of {', '.join(sorted(_GS1_SYMBOLOGY_IDS))})"
            )
        data = data[3:]
    data = _GS_STAND_INS.sub(_GS, data).strip(_GS)
    if not data:
        raise IdentifierError("element string is empty")
    pairs = _split_bracketed(data) if data.startswith("(") else _split_raw(data)
    return _from_ai_pairs(pairs, today=today)


# --- GS1 Digital Link --------------------------------------------------------------------------


def _dl_unescape(segment: str, name: str) -> str:
    if _MALFORMED_PERCENT.search(segment):
        raise IdentifierError(f"Digital Link {name} has a malformed percent-escape: {segment!r}")
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise IdentifierError(f"Digital Link {name} is not valid UTF-8: {segment!r}") from None


def _pairs(segments: list[str]) -> list[tuple[str, str]]:
    return list(zip(segments[::2], segments[1::2], strict=True))


def _dl_path_from_key(segments: list[str]) -> ParsedIdentifier:
    """Read ``01/{gtin}[/10/{lot}][/21/{serial}]`` or ``00/{sscc}`` (segments start at the key)."""
    (key, raw_key_value), *qualifiers = _pairs(segments)
    if key == "00":
        if qualifiers:
            raise IdentifierError(
                f"Digital Link SSCC (/00/) takes no key qualifiers, got /{qualifiers[0][0]}/"
            )
        sscc = _dl_unescape(raw_key_value, "SSCC")
        try:
            check_key(sscc, "SSCC", 18)
        except IdentifierError as error:
            raise IdentifierError(f"Digital Link /00/: {error}") from None
        return ParsedIdentifier(kind="sscc", sscc=sscc)
    try:
        gtin = normalize_gtin(_dl_unescape(raw_key_value, "GTIN"))
    except IdentifierError as error:
        raise IdentifierError(f"Digital Link /01/: {error}") from None
    values: dict[str, str] = {}
    for qualifier, raw in qualifiers:
        if qualifier not in ("10", "21"):
            raise IdentifierError(
                f"Digital Link path element /{qualifier}/ is not supported after /01/; "
                "only /10/ (lot) then /21/ (serial)"
            )
        if "21" in values or qualifier in values:
            raise IdentifierError(
                "Digital Link key qualifiers must come in the order /10/ (lot), /21/ (serial), "
                "each at most once"
            )
        name = "lot" if qualifier == "10" else "serial"
        value = _dl_unescape(raw, name)
        try:
            check_x20(value, name)
        except IdentifierError as error:
            raise IdentifierError(f"Digital Link /{qualifier}/: {error}") from None
        values[qualifier] = value
    serial = values.get("21")
    return ParsedIdentifier(
        kind="gtin" if serial is None else "sgtin", gtin=gtin, serial=serial, lot=values.get("10")
    )


def _dl_find_key(segments: list[str], path: str) -> ParsedIdentifier:
    # The path may start with the resolver's own segments, so try each /01/ or /00/ that is
    # followed by whole AI/value pairs; if none fits, report the last (most specific) failure.
    failure: IdentifierError | None = None
    for i, segment in enumerate(segments):
        if segment in ("00", "01") and (len(segments) - i) % 2 == 0:
            try:
                return _dl_path_from_key(segments[i:])
            except IdentifierError as error:
                failure = error
    if failure is not None:
        raise failure
    for segment in segments:
        if segment in _OTHER_DL_KEYS:
            raise IdentifierError(
                f"Digital Link primary key /{segment}/ ({_OTHER_DL_KEYS[segment]}) is not "
                "supported; only /01/ (GTIN) and /00/ (SSCC)"
            )
        if segment.lower() in _DL_ALPHAS:
            raise IdentifierError(
                f"Digital Link short name /{segment}/ is not supported; "
                f"write /{_DL_ALPHAS[segment.lower()]}/"
            )
    raise IdentifierError(f"Digital Link path has no /01/ (GTIN) or /00/ (SSCC) key: {path!r}")


def _dl_expiry(query: str, *, today: date) -> date | None:
    expiry: date | None = None
    for item in query.split("&") if query else []:
        raw_key, _, raw_value = item.partition("=")
        key = _dl_unescape(raw_key, "query parameter name")
        if key in ("00", "01", "10", "21"):
            raise IdentifierError(
                f"Digital Link AI {key} belongs in the path, not in the query string"
            )
        if key.lower() in _DL_ALPHAS:
            raise IdentifierError(
                f"Digital Link short name {key}= is not supported; write {_DL_ALPHAS[key.lower()]}="
            )
        if key != "17":
            continue  # other data attributes and non-GS1 parameters (linkType, …) are not kept
        try:
            value = parse_yymmdd(_dl_unescape(raw_value, "expiry (17)"), today=today)
        except IdentifierError as error:
            raise IdentifierError(f"Digital Link expiry (17): {error}") from None
        if expiry is not None and value != expiry:
            raise IdentifierError(
                "Digital Link query gives expiry (17) twice, with different dates"
            )
        expiry = value
    return expiry


def parse_digital_link(url: str, *, today: date) -> ParsedIdentifier:
    """Parse an uncompressed GS1 Digital Link URI with a GTIN or SSCC primary key.

    Any host and any leading path of its own; then ``/01/{gtin}[/10/{lot}][/21/{serial}]``
    (GTIN-8/12/13/14, normalised to 14) or ``/00/{sscc}``; ``?17=YYMMDD`` gives the expiry and
    other query parameters are ignored. Values are percent-decoded. ``today`` fixes the century.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError as error:
        raise IdentifierError(f"Digital Link is not a valid URI: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise IdentifierError(
            f"Digital Link must be an http or https URI, got scheme {parts.scheme!r}"
        )
    if not parts.netloc:
        raise IdentifierError("Digital Link has no host")
    segments = parts.path.split("/")[1:]
    if segments and not segments[-1]:
        segments.pop()  # a trailing slash
    parsed = _dl_find_key(segments, parts.path)
    expiry = _dl_expiry(parts.query, today=today)
    return parsed if expiry is None else replace(parsed, expiry=expiry)


# --- any form ----------------------------------------------------------------------------------


def parse_identifier(text: str, *, today: date) -> ParsedIdentifier:
    """Parse an SGTIN, SSCC or GTIN given in any supported form.

    EPC URI (``urn:epc:…``), GS1 Digital Link (``http(s)://…``, also behind a symbology
    identifier as a QR code scanner sends it), element string (bracketed or scanned), a bare
    18-digit SSCC or a bare GTIN-8/12/13/14. ``today`` fixes the century of an expiry date.
    """
    data = text.strip(" \t\r\n")
    if not data:
        raise IdentifierError("identifier is empty")
    if data.lower().startswith("urn:"):
        return parse_epc_uri(data)
    after_symbology = data[3:] if data.startswith("]") else data
    if after_symbology.lower().startswith(("http://", "https://")):
        return parse_digital_link(after_symbology, today=today)
    if is_digits(data):
        if len(data) == 18:
            check_key(data, "SSCC", 18)
            return ParsedIdentifier(kind="sscc", sscc=data)
        if len(data) in (8, 12, 13, 14):
            return ParsedIdentifier(kind="gtin", gtin=normalize_gtin(data))
        try:
            return parse_element_string(data, today=today)
        except IdentifierError as error:
            raise IdentifierError(
                f"{len(data)} digits are neither a GTIN (8, 12, 13 or 14 digits), an SSCC "
                f"(18 digits) nor an element string: {error}"
            ) from None
    return parse_element_string(data, today=today)
