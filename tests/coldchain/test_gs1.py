"""Tests for coldchain.gs1: GS1 keys, EPC URIs, element strings and Digital Link URIs.

Known-good values are public examples: the GS1 Digital Link / barcode examples (GTIN
09521234543213, SSCC 106141411234567897), the EPC Tag Data Standard (GTIN 80614141123458 ↔
urn:epc:id:sgtin:0614141.812345.6789), the EPCIS 2.0 examples in tests/data/epcis, and the
well-known EAN-13 4006381333931, UPC-A 036000291452 and EAN-8 96385074.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.gs1 import (
    CSET82,
    GTIN,
    SGTIN,
    SSCC,
    IdentifierError,
    ParsedIdentifier,
    canonical_epc,
    check_digit,
    check_lot,
    is_valid_gtin,
    is_valid_sscc,
    normalize_gtin,
)
from coldchain.gs1_parse import (
    parse_digital_link,
    parse_element_string,
    parse_epc_uri,
    parse_identifier,
    parse_yymmdd,
)

TODAY = date(2025, 6, 1)
GS = "\x1d"
#: GS1's EPCIS 2.0 examples, carried in the repository (tests/data/epcis/PROVENANCE.md).
EPCIS_DIR = Path(__file__).resolve().parents[1] / "data" / "epcis"


def sgtin(gtin: str, serial: str, **fields: Any) -> ParsedIdentifier:
    return ParsedIdentifier(kind="sgtin", gtin=gtin, serial=serial, **fields)


def same_thing(parsed: ParsedIdentifier) -> ParsedIdentifier:
    """Drop what only an EPC URI carries, to compare parses of different forms."""
    return ParsedIdentifier(
        kind=parsed.kind,
        gtin=parsed.gtin,
        serial=parsed.serial,
        sscc=parsed.sscc,
        lot=parsed.lot,
        expiry=parsed.expiry,
    )


# --- check digits and keys ---------------------------------------------------------------------


def test_cset82_is_the_82_character_set() -> None:
    assert len(CSET82) == 82
    assert len(set(CSET82)) == 82
    assert all(0x21 <= ord(c) <= 0x7A for c in CSET82)
    assert not set("#$@[\\]^`{|}~ ") & set(CSET82)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("0952123454321", 3),  # GTIN 09521234543213
        ("10614141123456789", 7),  # SSCC 106141411234567897
        ("8061414112345", 8),  # TDS GTIN 80614141123458
        ("1061414107346", 4),  # GTIN of urn:epc:id:sgtin:0614141.107346.*
        ("400638133393", 1),  # EAN-13 4006381333931
        ("03600029145", 2),  # UPC-A 036000291452
        ("9638507", 4),  # EAN-8 96385074
        ("0", 0),
    ],
)
def test_check_digit_of_public_examples(body: str, expected: int) -> None:
    assert check_digit(body) == expected


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("09521234543213", True),
        ("9521234543213", True),
        ("4006381333931", True),
        ("036000291452", True),
        ("96385074", True),
        ("10614141073464", True),
        ("09521234543214", False),  # wrong check digit
        ("123456789", False),  # no GTIN has 9 digits
        ("0952123454321X", False),
        ("０９５２１２３４５４３２１３", False),  # full-width digits are not digits 0-9
        ("", False),
    ],
)
def test_is_valid_gtin(text: str, valid: bool) -> None:
    assert is_valid_gtin(text) is valid


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("106141411234567897", True),
        ("106141412345678908", True),
        ("106141411234567893", False),
        ("10614141123456789", False),
        ("1061414112345678970", False),
        ("10614141123456789X", False),
    ],
)
def test_is_valid_sscc(text: str, valid: bool) -> None:
    assert is_valid_sscc(text) is valid


@pytest.mark.parametrize(
    ("text", "gtin14"),
    [
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
        ("4006381333931", "04006381333931"),
        ("09521234543213", "09521234543213"),
    ],
)
def test_gtin_8_12_13_normalise_to_gtin_14(text: str, gtin14: str) -> None:
    assert normalize_gtin(text) == gtin14
    assert GTIN.parse(text) == GTIN(gtin14)
    assert str(GTIN.parse(text)) == gtin14


@given(
    body=st.text("0123456789", min_size=13, max_size=13),
    position=st.integers(0, 13),
    delta=st.integers(1, 9),
)
def test_check_digit_catches_every_single_digit_error(body: str, position: int, delta: int) -> None:
    gtin = body + str(check_digit(body))
    assert is_valid_gtin(gtin)
    wrong = str((int(gtin[position]) + delta) % 10)
    assert not is_valid_gtin(gtin[:position] + wrong + gtin[position + 1 :])


# --- formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin", "serial", "prefix_length", "epc_uri", "element_string", "digital_link"),
    [
        (  # EPCIS 2.0 example 9.6.3 child and its translation
            "10614141073464",
            "2017",
            7,
            "urn:epc:id:sgtin:0614141.107346.2017",
            "(01)10614141073464(21)2017",
            "https://id.gs1.org/01/10614141073464/21/2017",
        ),
        (  # EPC Tag Data Standard example
            "80614141123458",
            "6789",
            7,
            "urn:epc:id:sgtin:0614141.812345.6789",
            "(01)80614141123458(21)6789",
            "https://id.gs1.org/01/80614141123458/21/6789",
        ),
        (
            "09521234543213",
            "12345",
            7,
            "urn:epc:id:sgtin:9521234.054321.12345",
            "(01)09521234543213(21)12345",
            "https://id.gs1.org/01/09521234543213/21/12345",
        ),
        (
            "09521234543213",
            "12345",
            6,
            "urn:epc:id:sgtin:952123.0454321.12345",
            "(01)09521234543213(21)12345",
            "https://id.gs1.org/01/09521234543213/21/12345",
        ),
        (
            "09521234543213",
            "12345",
            12,
            "urn:epc:id:sgtin:952123454321.0.12345",
            "(01)09521234543213(21)12345",
            "https://id.gs1.org/01/09521234543213/21/12345",
        ),
        (
            "09521234543213",
            "A/B%1",
            7,
            "urn:epc:id:sgtin:9521234.054321.A%2FB%251",
            "(01)09521234543213(21)A/B%1",
            "https://id.gs1.org/01/09521234543213/21/A%2FB%251",
        ),
        (  # every symbol of set 82
            "09521234543213",
            "!\"%&'()*+,-./:;<=>?_",
            7,
            "urn:epc:id:sgtin:9521234.054321.!%22%25%26'()*+,-.%2F:;%3C=%3E%3F_",
            "(01)09521234543213(21)!\"%&'()*+,-./:;<=>?_",
            "https://id.gs1.org/01/09521234543213/21/"
            "%21%22%25%26%27%28%29%2A%2B%2C-.%2F%3A%3B%3C%3D%3E%3F_",
        ),
        (  # a "(" that would read as an AI is written "\("
            "09521234543213",
            "A(10)B",
            7,
            "urn:epc:id:sgtin:9521234.054321.A(10)B",
            "(01)09521234543213(21)A\\(10)B",
            "https://id.gs1.org/01/09521234543213/21/A%2810%29B",
        ),
    ],
)
def test_sgtin_forms(
    gtin: str,
    serial: str,
    prefix_length: int,
    epc_uri: str,
    element_string: str,
    digital_link: str,
) -> None:
    item = SGTIN(GTIN(gtin), serial)
    assert item.epc_uri(company_prefix_length=prefix_length) == epc_uri
    assert item.element_string == element_string
    assert item.digital_link == digital_link
    expected = sgtin(gtin, serial)
    assert same_thing(parse_epc_uri(epc_uri)) == expected
    assert parse_epc_uri(epc_uri).company_prefix_length == prefix_length
    assert parse_element_string(element_string, today=TODAY) == expected
    assert parse_digital_link(digital_link, today=TODAY) == expected


def test_epc_uri_default_company_prefix_length_is_7() -> None:
    item = SGTIN(GTIN("09521234543213"), "1")
    assert item.epc_uri() == "urn:epc:id:sgtin:9521234.054321.1"
    assert SSCC("106141411234567897").epc_uri() == "urn:epc:id:sscc:0614141.1123456789"


@pytest.mark.parametrize(
    ("sscc", "prefix_length", "epc_uri"),
    [
        ("106141411234567897", 7, "urn:epc:id:sscc:0614141.1123456789"),
        ("106141412345678908", 7, "urn:epc:id:sscc:0614141.1234567890"),  # EPCIS parentID
        ("106141411234567897", 12, "urn:epc:id:sscc:061414112345.16789"),
        ("106141411234567897", 6, "urn:epc:id:sscc:061414.11123456789"),
    ],
)
def test_sscc_forms(sscc: str, prefix_length: int, epc_uri: str) -> None:
    unit = SSCC(sscc)
    assert unit.epc_uri(prefix_length) == epc_uri
    assert unit.element_string == f"(00){sscc}"
    assert unit.digital_link == f"https://id.gs1.org/00/{sscc}"
    assert str(unit) == sscc
    parsed = parse_epc_uri(epc_uri)
    assert (parsed.kind, parsed.sscc, parsed.company_prefix_length) == ("sscc", sscc, prefix_length)


def test_gtin_forms() -> None:
    gtin = GTIN("09521234543213")
    assert gtin.element_string == "(01)09521234543213"
    assert gtin.digital_link == "https://id.gs1.org/01/09521234543213"
    assert gtin.epc_pattern_uri() == "urn:epc:idpat:sgtin:9521234.054321.*"
    assert gtin.epc_pattern_uri(9) == "urn:epc:idpat:sgtin:952123454.0321.*"


# --- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "urn:epc:id:sgtin:0614141.107346.2017",
            sgtin("10614141073464", "2017", company_prefix_length=7),
        ),
        (
            "urn:epc:id:sgtin:4012345.011111.9876",
            sgtin("04012345111118", "9876", company_prefix_length=7),
        ),
        (
            "urn:epc:id:sgtin:0614141.812345.ABC%2F1%25",
            sgtin("80614141123458", "ABC/1%", company_prefix_length=7),
        ),
        (  # escapes are hex, either case; any escape of a set-82 character is read
            "urn:epc:id:sgtin:0614141.812345.a%2fb%41",
            sgtin("80614141123458", "a/bA", company_prefix_length=7),
        ),
        (  # the serial may itself contain dots
            "urn:epc:id:sgtin:0614141.812345.A.B.C",
            sgtin("80614141123458", "A.B.C", company_prefix_length=7),
        ),
        (
            "URN:EPC:ID:SGTIN:061414107.1346.2017",
            sgtin("10614141073464", "2017", company_prefix_length=9),
        ),
        (
            "urn:epc:id:sscc:0614141.1234567890",
            ParsedIdentifier(kind="sscc", sscc="106141412345678908", company_prefix_length=7),
        ),
        (
            "urn:epc:idpat:sgtin:4012345.098765.*",
            ParsedIdentifier(kind="gtin", gtin="04012345987652", company_prefix_length=7),
        ),
        (
            "urn:epc:class:lgtin:4012345.012345.998877",
            ParsedIdentifier(
                kind="gtin", gtin="04012345123456", lot="998877", company_prefix_length=7
            ),
        ),
    ],
)
def test_parse_epc_uri(uri: str, expected: ParsedIdentifier) -> None:
    assert parse_epc_uri(uri) == expected


GTIN_A = "09521234543213"
# GTIN_A, expiry (17) 2027-01-15, lot (10) AB; a serial (21) X1 follows after a separator.
SCANNED = f"01{GTIN_A}17270115" + "10AB"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "(01)09521234543213(17)270100(10)AB-12(21)X1",
            sgtin(GTIN_A, "X1", lot="AB-12", expiry=date(2027, 1, 31)),
        ),
        ("(01) 09521234543213 (21) X1", sgtin(GTIN_A, "X1")),
        ("(01)09521234543213(21)A\\(10)B", sgtin(GTIN_A, "A(10)B")),
        # Unescaped, a bracketed AI inside a value is read as an AI.
        ("(01)09521234543213(21)A(10)B", sgtin(GTIN_A, "A", lot="B")),
        ("(01)09521234543213(21)A(B)", sgtin(GTIN_A, "A(B)")),
        (
            "(01)09521234543213(10)L1(17)270131",
            ParsedIdentifier(kind="gtin", gtin=GTIN_A, lot="L1", expiry=date(2027, 1, 31)),
        ),
        (  # logistic label: SSCC with contents (02), count (37) and the contents' lot
            "(00)106141411234567897(02)09521234543213(37)24(10)LOT1",
            ParsedIdentifier(kind="sscc", sscc="106141411234567897", lot="LOT1"),
        ),
        (f"{SCANNED}{GS}21X1", None),
        (f"]d2{SCANNED}{GS}21X1", None),
        (f"]C1{SCANNED}<GS>21X1", None),
        (f"]Q3{SCANNED}<gs>21X1", None),
        (f"]d2{SCANNED}\\x1d21X1", None),  # the four characters \ x 1 d
        (f"]d2{SCANNED}[GS]21X1", None),
        (f"]d2{SCANNED}{{GS}}21X1", None),
        (f"]e0{SCANNED}^]21X1", None),
        (f"]J1{SCANNED}\u241d21X1", None),
        (f"{GS}{SCANNED}{GS}21X1{GS}\r\n", None),  # FNC1 sent as GS first, scanner's CR LF
        (  # FNC1 after a fixed-length AI is allowed, and serial may come before lot
            f"]d201095212345432131727011521X1{GS}10AB",
            None,
        ),
        (  # AIs not modelled here (710 national healthcare number, 30 count) are skipped
            f"]d2010952123454321321X1{GS}7101234567{GS}3012{GS}1727011510AB",
            None,
        ),
        ("00106141411234567897", ParsedIdentifier(kind="sscc", sscc="106141411234567897")),
        ("0109521234543213", ParsedIdentifier(kind="gtin", gtin=GTIN_A)),
    ],
)
def test_parse_element_string(text: str, expected: ParsedIdentifier | None) -> None:
    # None stands for the scanned reference item: GTIN_A, serial X1, lot AB, expiry 2027-01-15.
    want = expected or sgtin(GTIN_A, "X1", lot="AB", expiry=date(2027, 1, 15))
    assert parse_element_string(text, today=TODAY) == want


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://id.gs1.org/01/09521234543213/21/12345", sgtin(GTIN_A, "12345")),
        (
            "https://id.gs1.org/01/09521234543213/10/ABC123/21/12345?17=261231",
            sgtin(GTIN_A, "12345", lot="ABC123", expiry=date(2026, 12, 31)),
        ),
        (
            "https://id.gs1.org/01/09521234543213/10/ABC123?17=261200",
            ParsedIdentifier(kind="gtin", gtin=GTIN_A, lot="ABC123", expiry=date(2026, 12, 31)),
        ),
        (
            "https://example.com/products/01/09521234543213",
            ParsedIdentifier(kind="gtin", gtin=GTIN_A),
        ),
        (
            "https://id.gs1.org/00/106141411234567897",
            ParsedIdentifier(kind="sscc", sscc="106141411234567897"),
        ),
        ("https://id.gs1.org/01/9521234543213/21/1", sgtin(GTIN_A, "1")),  # GTIN-13
        ("https://id.gs1.org/01/09521234543213/21/A%2FB%25%281%29", sgtin(GTIN_A, "A/B%(1)")),
        ("https://id.gs1.org/01/09521234543213/21/a%2fb", sgtin(GTIN_A, "a/b")),
        ("https://id.gs1.org/01/09521234543213/21/X1/#top", sgtin(GTIN_A, "X1")),
        (
            "HTTP://RESOLVER.EXAMPLE/01/09521234543213/21/X1?linkType=gs1:pip&3103=000195&17=270115",
            sgtin(GTIN_A, "X1", expiry=date(2027, 1, 15)),
        ),
        (  # the resolver's own path may contain "01"
            "https://example.com/01/shop/01/09521234543213/21/7",
            sgtin(GTIN_A, "7"),
        ),
        ("https://id.gs1.org/01/09521234543213/21/01", sgtin(GTIN_A, "01")),
    ],
)
def test_parse_digital_link(url: str, expected: ParsedIdentifier) -> None:
    assert parse_digital_link(url, today=TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "urn:epc:id:sgtin:9521234.054321.X1",
        "https://id.gs1.org/01/09521234543213/21/X1",
        "]Q1https://id.gs1.org/01/09521234543213/21/X1",  # QR code scanner with symbology id
        "(01)09521234543213(21)X1",
        "]d2010952123454321321X1",
        "  (01)09521234543213(21)X1\r\n",
    ],
)
def test_parse_identifier_reads_every_form(text: str) -> None:
    assert same_thing(parse_identifier(text, today=TODAY)) == sgtin(GTIN_A, "X1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("106141411234567897", ParsedIdentifier(kind="sscc", sscc="106141411234567897")),
        ("09521234543213", ParsedIdentifier(kind="gtin", gtin=GTIN_A)),
        ("9521234543213", ParsedIdentifier(kind="gtin", gtin=GTIN_A)),
        ("96385074", ParsedIdentifier(kind="gtin", gtin="00000096385074")),
        ("00106141411234567897", ParsedIdentifier(kind="sscc", sscc="106141411234567897")),
        (
            "urn:epc:id:sscc:0614141.1123456789",
            ParsedIdentifier(kind="sscc", sscc="106141411234567897", company_prefix_length=7),
        ),
    ],
)
def test_parse_identifier_bare_keys(text: str, expected: ParsedIdentifier) -> None:
    assert parse_identifier(text, today=TODAY) == expected


# --- expiry dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yymmdd", "today", "expected"),
    [
        ("250615", date(2025, 6, 1), date(2025, 6, 15)),
        ("270100", date(2025, 6, 1), date(2027, 1, 31)),  # DD=00: last day of the month
        ("240200", date(2025, 6, 1), date(2024, 2, 29)),
        ("250200", date(2025, 6, 1), date(2025, 2, 28)),
        ("251200", date(2025, 6, 1), date(2025, 12, 31)),
        ("750101", date(2025, 6, 1), date(2075, 1, 1)),  # 50 years ahead: this century
        ("760101", date(2025, 6, 1), date(1976, 1, 1)),  # 51 ahead: previous century
        ("760101", date(2026, 1, 1), date(2076, 1, 1)),  # the window slides with today
        ("990101", date(2000, 1, 1), date(1999, 1, 1)),
        ("410101", date(2090, 1, 1), date(2041, 1, 1)),  # 49 behind: this century
        ("400101", date(2090, 1, 1), date(2140, 1, 1)),  # 50 behind: next century
    ],
)
def test_parse_yymmdd(yymmdd: str, today: date, expected: date) -> None:
    assert parse_yymmdd(yymmdd, today=today) == expected


@given(
    today=st.dates(min_value=date(1900, 1, 1), max_value=date(2500, 12, 31)),
    yy=st.integers(0, 99),
    mm=st.integers(1, 12),
)
def test_expiry_year_lies_in_the_gs1_window(today: date, yy: int, mm: int) -> None:
    expiry = parse_yymmdd(f"{yy:02d}{mm:02d}00", today=today)
    assert -49 <= expiry.year - today.year <= 50
    assert expiry.year % 100 == yy
    assert expiry.month == mm
    assert (expiry + timedelta(days=1)).month != mm  # DD=00 is the month's last day


# --- canonical storage form --------------------------------------------------------------------


def test_canonical_epc_is_the_same_for_every_form_of_one_item() -> None:
    forms = [
        "urn:epc:id:sgtin:0614141.107346.2017",
        "https://id.gs1.org/01/10614141073464/21/2017",
        "(01)10614141073464(21)2017",
        "]d2011061414107346421 2017".replace(" ", ""),
    ]
    canonical = {canonical_epc(parse_identifier(text, today=TODAY)) for text in forms}
    assert canonical == {"urn:epc:id:sgtin:0614141.107346.2017"}


def test_canonical_epc_keeps_the_prefix_length_of_an_epc_uri() -> None:
    uri = "urn:epc:id:sgtin:061414107.1346.2017"
    assert canonical_epc(parse_epc_uri(uri)) == uri
    # Not known from a Digital Link: the caller says it, or the default 7 applies.
    from_link = parse_digital_link("https://id.gs1.org/01/10614141073464/21/2017", today=TODAY)
    assert canonical_epc(from_link, company_prefix_length=9) == uri
    assert canonical_epc(from_link) == "urn:epc:id:sgtin:0614141.107346.2017"
    sscc = parse_identifier("106141411234567897", today=TODAY)
    assert canonical_epc(sscc) == "urn:epc:id:sscc:0614141.1123456789"
    assert canonical_epc(sscc, company_prefix_length=12) == "urn:epc:id:sscc:061414112345.16789"


# --- errors ------------------------------------------------------------------------------------


def _link(text: str) -> object:
    return parse_digital_link(text, today=TODAY)


def _element(text: str) -> object:
    return parse_element_string(text, today=TODAY)


def _identifier(text: str) -> object:
    return parse_identifier(text, today=TODAY)


@pytest.mark.parametrize(
    ("call", "argument", "message"),
    [
        # keys
        (GTIN, "9521234543213", "GTIN must be 14 digits, got 13"),
        (GTIN, "09521234543214", "GTIN check digit is 4, expected 3"),
        (GTIN, "0952123454321X", "GTIN must contain only digits 0-9, found 'X'"),
        (GTIN, "", "GTIN must be 14 digits, got 0"),
        (SSCC, "106141411234567893", "SSCC check digit is 3, expected 7"),
        (SSCC, "10614141123456789", "SSCC must be 18 digits, got 17"),
        (normalize_gtin, "123456789", "GTIN must be 8, 12, 13 or 14 digits, got 9"),
        (normalize_gtin, "12345678²", "GTIN must contain only digits 0-9, found '²'"),
        (check_digit, "", "check digit needs a body of digits 0-9, got ''"),
        (check_digit, "12a", "check digit needs a body of digits 0-9, got '12a'"),
        # serials
        (
            lambda s: SGTIN(GTIN(GTIN_A), s),
            "AB#1",
            "serial contains '#' which is not in GS1 AI encodable character set 82",
        ),
        (lambda s: SGTIN(GTIN(GTIN_A), s), "AB 1", "serial contains ' ' which is not in"),
        (lambda s: SGTIN(GTIN(GTIN_A), s), "é", "serial contains 'é' which is not in"),
        (lambda s: SGTIN(GTIN(GTIN_A), s), "", "serial is empty; it needs 1 to 20 characters"),
        (lambda s: SGTIN(GTIN(GTIN_A), s), "x" * 21, "serial is 21 characters long; at most 20"),
        (lambda g: SGTIN(g, "1"), GTIN_A, "SGTIN needs a GTIN object, got str; use GTIN.parse()"),
        # company prefix length
        (lambda n: SGTIN(GTIN(GTIN_A), "1").epc_uri(n), 5, "must be 6 to 12, got 5"),
        (lambda n: SSCC("106141411234567897").epc_uri(n), 13, "must be 6 to 12, got 13"),
        (lambda n: GTIN(GTIN_A).epc_pattern_uri(n), True, "must be 6 to 12, got True"),
        # EPC URIs
        (parse_epc_uri, "urn:epc:id:sgtin:0614141.107346", "needs CompanyPrefix.IndicatorItemRef"),
        (
            parse_epc_uri,
            "urn:epc:id:sgtin:0614141.10734.2017",
            "company prefix and indicator/item reference must total 13 digits, got 7 + 5",
        ),
        (
            parse_epc_uri,
            "urn:epc:id:sgtin:06141.41073466.2017",
            "company prefix must be 6 to 12 digits, got 5",
        ),
        (parse_epc_uri, "urn:epc:id:sgtin:06141A1.107346.1", "company prefix must be digits"),
        (parse_epc_uri, "urn:epc:id:sgtin:0614141.107346.A/B", "must escape as %2F"),
        (parse_epc_uri, "urn:epc:id:sgtin:0614141.107346.A&B", "must escape as %26"),
        (
            parse_epc_uri,
            "urn:epc:id:sgtin:0614141.107346.A%2",
            "malformed escape '%2'; write '%' as %25",
        ),
        (
            parse_epc_uri,
            "urn:epc:id:sgtin:0614141.107346.A%23",
            "serial contains '#' which is not in GS1 AI encodable character set 82",
        ),
        (parse_epc_uri, "urn:epc:id:sgtin:0614141.107346.", "serial is empty"),
        (
            parse_epc_uri,
            "urn:epc:id:sscc:0614141.123456789",
            "extension/serial reference must total 17 digits, got 7 + 9",
        ),
        (parse_epc_uri, "urn:epc:id:sscc:0614141.12345678.90", "needs CompanyPrefix.Extension"),
        (parse_epc_uri, "urn:epc:id:sgln:0614141.00777.0", "not an SGTIN or SSCC EPC URI"),
        (parse_epc_uri, "urn:epc:tag:sgtin-96:3.0614141.812345.6789", "tag URIs"),
        (parse_epc_uri, "urn:epc:idpat:sgtin:4012345.098765.5", "must end in '.*'"),
        (parse_epc_uri, "urn:epc:idpat:sgtin:4012345.*.*", "item reference must be digits"),
        # element strings
        (_element, "(01)9521234543213(21)1", "AI (01): GTIN must be 14 digits, got 13"),
        (_element, "(01)09521234543214", "AI (01): GTIN check digit is 4, expected 3"),
        (
            _element,
            "(01)09521234543213(21)AB#1",
            "AI (21): serial contains '#' which is not in GS1 AI encodable character set 82",
        ),
        (_element, f"(01){GTIN_A}(10){'x' * 21}", "AI (10): lot is 21 characters long"),
        (
            _element,
            f"(01){GTIN_A}(17)271301",
            "AI (17) expiry: date '271301': month must be 01 to 12, got 13",
        ),
        (_element, f"(01){GTIN_A}(17)270230", "day 30 does not exist in 2027-02"),
        (_element, f"(01){GTIN_A}(17)2701", "date must be 6 digits YYMMDD, got '2701'"),
        (_element, "(21)X1", "serial (21) without a GTIN (01)"),
        (_element, "(10)L1(17)270101", "no GTIN (01) or SSCC (00) in the element string; found"),
        (_element, f"(01){GTIN_A}(21)A(21)B", "AI (21) appears twice with different values"),
        (_element, f"(01){GTIN_A}(123)X", "(123) is not a GS1 Application Identifier"),
        (_element, f"(01){GTIN_A}(05)X", "no GS1 Application Identifier starts with '05'"),
        (_element, f"(01){GTIN_A}(710)", "AI (710) has no data"),
        (_element, f"(01){GTIN_A}(11)2501", "AI (11) is fixed length, 6 characters, but has 4"),
        (_element, "01095212345432", "AI (01) is fixed length, 14 characters, but has 12"),
        (_element, f"01{GTIN_A}112501{GS}21X", "AI (11) is fixed length, 6 characters, but has 4"),
        (_element, f"01{GTIN_A}05X", "no GS1 Application Identifier starts with '05'"),
        (_element, f"x01{GTIN_A}", "expected an AI at position 0"),
        (_element, f"(01){GTIN_A}X", "GTIN must contain only digits 0-9, found 'X'"),
        (_element, f"]d101{GTIN_A}", "symbology identifier ']d1' does not announce GS1"),
        (_element, "]d2", "element string is empty"),
        # Digital Link
        (_link, f"ftp://id.gs1.org/01/{GTIN_A}", "must be an http or https URI"),
        (_link, f"https:///01/{GTIN_A}", "Digital Link has no host"),
        (_link, f"https://[::1/01/{GTIN_A}", "Digital Link is not a valid URI"),
        (
            _link,
            "https://id.gs1.org/01/09521234543214",
            "Digital Link /01/: GTIN check digit is 4, expected 3",
        ),
        (
            _link,
            "https://id.gs1.org/01/952123454321399",
            "GTIN must be 8, 12, 13 or 14 digits, got 15",
        ),
        (
            _link,
            f"https://id.gs1.org/01/{GTIN_A}/21/AB%231",
            "Digital Link /21/: serial contains '#' which is not in GS1 AI encodable",
        ),
        (_link, f"https://id.gs1.org/01/{GTIN_A}/21/A%2", "malformed percent-escape"),
        (_link, f"https://id.gs1.org/01/{GTIN_A}/21/%FF", "is not valid UTF-8"),
        (_link, f"https://id.gs1.org/01/{GTIN_A}/21/1/10/L", "in the order /10/ (lot), /21/"),
        (_link, f"https://id.gs1.org/01/{GTIN_A}/22/V1", "/22/ is not supported after /01/"),
        (
            _link,
            "https://id.gs1.org/00/106141411234567897/21/1",
            "SSCC (/00/) takes no key qualifiers",
        ),
        (
            _link,
            "https://id.gs1.org/00/106141411234567893",
            "Digital Link /00/: SSCC check digit is 3, expected 7",
        ),
        (_link, "https://id.gs1.org/8004/4000001111", "/8004/ (GIAI) is not supported"),
        (_link, f"https://id.gs1.org/gtin/{GTIN_A}", "short name /gtin/ is not supported"),
        (_link, "https://id.gs1.org/products/123", "has no /01/ (GTIN) or /00/ (SSCC) key"),
        (
            _link,
            f"https://id.gs1.org/01/{GTIN_A}?17=271301",
            "Digital Link expiry (17): date '271301': month must be 01 to 12",
        ),
        (_link, f"https://id.gs1.org/01/{GTIN_A}?21=1", "AI 21 belongs in the path"),
        (_link, f"https://id.gs1.org/01/{GTIN_A}?exp=270101", "short name exp= is not"),
        (_link, f"https://id.gs1.org/01/{GTIN_A}?17=270101&17=270102", "expiry (17) twice"),
        # any form
        (_identifier, "", "identifier is empty"),
        (_identifier, " \r\n", "identifier is empty"),
        (_identifier, "106141411234567893", "SSCC check digit is 3, expected 7"),
        (_identifier, "123456789", "9 digits are neither a GTIN (8, 12, 13 or 14 digits)"),
        (_identifier, "hello", "expected an AI at position 0"),
        (
            canonical_epc,
            ParsedIdentifier(kind="gtin", gtin=GTIN_A),
            "a 'gtin' identifier has no EPC instance URI",
        ),
        (
            lambda gtin: ParsedIdentifier(kind="sgtin", gtin=gtin),
            GTIN_A,
            "fields do not fit kind 'sgtin'",
        ),
    ],
)
def test_errors_say_what_is_wrong(
    call: Callable[[Any], object], argument: object, message: str
) -> None:
    with pytest.raises(IdentifierError, match=re.escape(message)):
        call(argument)


def test_identifier_error_is_a_value_error() -> None:
    assert issubclass(IdentifierError, ValueError)


# --- round trips -------------------------------------------------------------------------------

gtins = st.text("0123456789", min_size=13, max_size=13).map(lambda b: b + str(check_digit(b)))
ssccs = st.text("0123456789", min_size=17, max_size=17).map(lambda b: b + str(check_digit(b)))
x20 = st.text(CSET82, min_size=1, max_size=20)
prefix_lengths = st.integers(6, 12)


@given(gtin=gtins, serial=x20, prefix_length=prefix_lengths)
def test_sgtin_round_trips_through_every_form(gtin: str, serial: str, prefix_length: int) -> None:
    item = SGTIN(GTIN(gtin), serial)
    expected = sgtin(gtin, serial)
    uri = item.epc_uri(prefix_length)
    from_uri = parse_epc_uri(uri)
    assert from_uri == sgtin(gtin, serial, company_prefix_length=prefix_length)
    from_element = parse_element_string(item.element_string, today=TODAY)
    from_link = parse_digital_link(item.digital_link, today=TODAY)
    assert from_element == expected
    assert from_link == expected
    for text in (uri, item.element_string, item.digital_link):
        assert same_thing(parse_identifier(text, today=TODAY)) == expected
    # every form leads back to the one stored string
    assert canonical_epc(from_uri) == uri
    assert canonical_epc(from_element, company_prefix_length=prefix_length) == uri
    assert canonical_epc(from_link, company_prefix_length=prefix_length) == uri
    # the serial part of the URIs uses only the characters their standards allow unescaped
    assert re.fullmatch(r"([A-Za-z0-9!'()*+,\-.:;=_]|%[0-9A-F]{2})+", uri.split(".", 2)[2])
    assert re.fullmatch(r"([A-Za-z0-9\-._]|%[0-9A-F]{2})+", item.digital_link.rsplit("/", 1)[1])


@given(sscc=ssccs, prefix_length=prefix_lengths)
def test_sscc_round_trips_through_every_form(sscc: str, prefix_length: int) -> None:
    unit = SSCC(sscc)
    expected = ParsedIdentifier(kind="sscc", sscc=sscc)
    uri = unit.epc_uri(prefix_length)
    assert parse_epc_uri(uri) == ParsedIdentifier(
        kind="sscc", sscc=sscc, company_prefix_length=prefix_length
    )
    assert parse_element_string(unit.element_string, today=TODAY) == expected
    assert parse_digital_link(unit.digital_link, today=TODAY) == expected
    assert parse_identifier(sscc, today=TODAY) == expected
    assert canonical_epc(expected, company_prefix_length=prefix_length) == uri


def _hri_value(value: str) -> str:
    return re.sub(r"\((?=\d{2,4}\))", r"\\(", value)


@given(
    gtin=gtins,
    serial=x20,
    lot=x20,
    expiry=st.dates(min_value=date(1980, 1, 1), max_value=date(2070, 12, 31)),
    symbology=st.sampled_from(["", "]d2", "]C1", "]Q3"]),
    # "<GS>" is left out here: "<", "G", "S" and ">" are all in set 82, so a lot may contain it.
    separator=st.sampled_from([GS, "\\x1d", "[GS]", "{GS}", "^]"]),
)
def test_scanned_and_bracketed_element_strings_round_trip(
    gtin: str, serial: str, lot: str, expiry: date, symbology: str, separator: str
) -> None:
    yymmdd = expiry.strftime("%y%m%d")
    expected = sgtin(gtin, serial, lot=lot, expiry=expiry)
    scanned = f"{symbology}01{gtin}17{yymmdd}10{lot}{separator}21{serial}"
    assert parse_element_string(scanned, today=TODAY) == expected
    assert parse_identifier(scanned, today=TODAY) == expected
    bracketed = f"(01){gtin}(17){yymmdd}(10){_hri_value(lot)}(21){_hri_value(serial)}"
    assert parse_element_string(bracketed, today=TODAY) == expected


# --- the EPCIS 2.0 reference examples ----------------------------------------------------------


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _epcis_strings() -> set[str]:
    assert EPCIS_DIR.is_dir(), f"EPCIS reference examples missing: {EPCIS_DIR}"
    files = sorted(EPCIS_DIR.glob("*.jsonld"))
    assert files, f"no *.jsonld files in {EPCIS_DIR}"
    found: set[str] = set()
    for path in files:
        found.update(_strings(json.loads(path.read_text(encoding="utf-8"))))
    return found


_DIGITAL_LINK = re.compile(r"https?://[^/?#]+(?:/[^?#]*)?/(?:01|00)/\d+(?:[/?#].*)?")
_OTHER_GS1_KEY_LINK = re.compile(r"https?://[^/?#]+/(?:253|414|417|8003|8004)/\S+")


def test_every_sgtin_sscc_and_digital_link_in_the_epcis_examples_parses() -> None:
    strings = _epcis_strings()
    epc_uris = {s for s in strings if re.match(r"urn:epc:id:(?:sgtin|sscc):", s)}
    links = {s for s in strings if _DIGITAL_LINK.fullmatch(s)}
    # guard against a vacuous pass: these are known to be in the examples
    assert {
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:id:sgtin:0614141.107346.2017",
        "urn:epc:id:sgtin:4012345.011111.9876",
    } <= epc_uris
    assert {
        "https://id.gs1.org/01/70614141123451/21/2017",
        "https://id.gs1.org/01/04012345987652",
        "https://id.gs1.org/01/04012345123456/10/998877",
    } <= links
    for uri in epc_uris:
        parsed = parse_identifier(uri, today=TODAY)
        assert parsed.kind in ("sgtin", "sscc")
        assert canonical_epc(parsed) == uri
    for link in links:
        parsed = parse_identifier(link, today=TODAY)
        assert parsed.gtin is not None or parsed.sscc is not None


def test_epcis_class_uris_agree_with_their_digital_link_twins() -> None:
    strings = _epcis_strings()
    assert "urn:epc:idpat:sgtin:4012345.098765.*" in strings
    assert "urn:epc:class:lgtin:4012345.012345.998877" in strings
    assert same_thing(parse_identifier("urn:epc:idpat:sgtin:4012345.098765.*", today=TODAY)) == (
        parse_identifier("https://id.gs1.org/01/04012345987652", today=TODAY)
    )
    lgtin = parse_identifier("urn:epc:class:lgtin:4012345.012345.998877", today=TODAY)
    link = parse_identifier("https://id.gs1.org/01/04012345123456/10/998877", today=TODAY)
    assert same_thing(lgtin) == link


def test_epcis_links_with_other_gs1_keys_are_refused_by_name() -> None:
    others = {s for s in _epcis_strings() if _OTHER_GS1_KEY_LINK.fullmatch(s)}
    assert "https://id.gs1.org/8004/4000001111" in others
    for link in others:
        with pytest.raises(
            IdentifierError, match=r"primary key /\d+/ \(\w[\w ]*\) is not supported"
        ):
            parse_identifier(link, today=TODAY)


def test_a_lot_is_one_to_twenty_characters_of_set_82() -> None:
    assert check_lot("LOT-A/2025_03") == "LOT-A/2025_03"
    assert check_lot("x" * 20) == "x" * 20
    for bad, words in (
        ("", "empty"),
        ("LOT A", "set 82"),
        ("L" * 21, "at most 20"),
        ("LÖT", "set 82"),
    ):
        with pytest.raises(IdentifierError, match=words):
            check_lot(bad)
