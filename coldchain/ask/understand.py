"""What a question asks: its intent and its entities (pure: the vocabulary and ``now`` are given).

:func:`understand` reads a question into a :class:`Question`:

- identifiers: every GS1 form :func:`coldchain.gs1_parse.parse_identifier` reads (SSCC with or
  without AI 00, SGTIN as Digital Link, EPC URN or element string, GTIN + lot ``(01)…(10)…``),
  and reference-like words (``SHP-0001``, ``PO 5829``, ``LOG-7``) that the service resolves to
  a shipment, an external reference or a logger (only the database knows which);
- names from the :class:`Vocabulary` (sites, carriers, products, lane codes), typo-tolerant,
  with their role in a place phrase: "from Basel" is an origin, "to JFK" a destination;
- statuses (:data:`coldchain.lifecycle.STATE_LABELS`' words, "awaiting review"), the fleet's
  conditions (alarm, warning, offline), alert severities and states;
- a date or range (:mod:`coldchain.ask.dates`);
- the intent, from keywords (:data:`INTENT_WORDS`), typos forgiven (:mod:`coldchain.ask.text`).

Nothing here decides what exists: a reference-like word that names nothing is the service's to
say ("I could not find shipment SHP-9999").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from coldchain import lifecycle
from coldchain.ask.dates import MONTHS, Period, find_period
from coldchain.ask.text import closest, match_names, tokens
from coldchain.errors import IdentifierError
from coldchain.gs1 import ParsedIdentifier
from coldchain.gs1_parse import parse_identifier
from coldchain.severity import SEVERITIES

__all__ = ["INTENTS", "INTENT_WORDS", "Question", "Vocabulary", "understand"]

#: What the answerer can be asked, in the order it tries them (see :func:`_intent`).
INTENTS: Final = (
    "help",
    "audit",
    "people",
    "loggers",
    "lot",
    "unit",
    "excursions",
    "alerts",
    "qa",
    "where",
    "status",
    "shipments",
)

#: The words that point at each intent (folded, singular and plural).
INTENT_WORDS: Final[dict[str, frozenset[str]]] = {
    "help": frozenset({"help", "examples", "example"}),
    "audit": frozenset({"audit", "trail", "changed", "modified", "edited"}),
    "people": frozenset({"users", "user", "people", "accounts", "account", "keys", "key"}),
    "loggers": frozenset(
        {"logger", "loggers", "device", "devices", "battery", "batteries", "calibration",
         "calibrated", "sensor", "sensors", "seen"}
    ),
    "lot": frozenset({"lot", "lots", "batch", "batches"}),
    "unit": frozenset({"unit", "units", "pallet", "pallets", "pack", "packs", "case", "exposed",
                       "recalled", "recall", "sellable", "sscc", "sgtin"}),
    "excursions": frozenset({"excursion", "excursions", "breach", "breaches", "range"}),
    "alerts": frozenset({"alert", "alerts", "alarms", "unacknowledged", "acknowledged",
                         "incidents"}),
    "qa": frozenset({"qa", "review", "reviewed", "signed", "sign", "signature", "disposition",
                     "dispositions", "decision", "decisions", "approved", "awaiting"}),
    "where": frozenset({"where", "located", "location", "position", "whereabouts"}),
    "status": frozenset({"status", "state", "doing", "progress"}),
    "shipments": frozenset({"shipments", "shipment", "many", "which", "list", "count", "show",
                            "consignments", "orders"}),
}  # fmt: skip

# Words that introduce an external reference, and its kind in shipment_references.
_REFERENCE_WORDS: Final = {
    "po": "purchase_order",
    "purchase": "purchase_order",
    "so": "sales_order",
    "order": None,
    "ref": None,
    "reference": None,
    "shipment": None,
    "logger": None,
    "device": None,
}
_ORIGIN_WORDS: Final = frozenset({"from", "leaving", "departing", "out"})
_DESTINATION_WORDS: Final = frozenset({"to", "into", "towards", "for", "bound"})

# Status words → shipment states (coldchain.lifecycle); "awaiting review" is QA's word for
# arrived (coldchain.lifecycle.QA_STATES).
_STATUS_PHRASES: Final[dict[str, tuple[lifecycle.State, ...]]] = {
    **{label.lower(): (state,) for state, label in lifecycle.STATE_LABELS.items()},
    "under review": ("under_review",),
    "awaiting review": ("arrived", "under_review"),
    "awaiting qa": ("arrived", "under_review"),
    "waiting for qa": ("arrived", "under_review"),
    "in qa": ("arrived", "under_review"),
    "delivered": ("arrived",),
    "on the way": ("in_transit",),
    "en route": ("in_transit",),
    "moving": ("in_transit",),
    "finished": ("arrived", "under_review", "released", "quarantined", "rejected", "returned"),
}
_CONDITIONS: Final = {"alarm": "alarm", "warning": "warning", "offline": "offline"}
_ALERT_STATES: Final = {
    "unacknowledged": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "closed": ("resolved",),
    "open": ("open", "acknowledged"),
}
_FILLER: Final = frozenset(
    {"a", "an", "the", "of", "is", "are", "was", "were", "be", "been", "has", "have", "had",
     "did", "do", "does", "what", "whats", "how", "me", "my", "our", "any", "all", "there",
     "with", "and", "or", "in", "on", "at", "by", "it", "its", "this", "that", "please", "i",
     "we", "you", "can", "could", "tell", "give", "get", "find", "now", "currently", "right",
     "about", "go", "going", "went", "still", "need", "needs", "per", "who", "when", "not",
     "no", "yet", "than", "more", "less", "over", "under", "out", "up", "last", "since",
     "past", "today", "yesterday", "week", "month", "year", "hours", "days", "weeks", "temp",
     "temperature", "carried", "carry", "contain", "contained", "containing", "shipped",
     "low", "due", "expired", "expiring", "soon", "overdue", "latest", "newest", "oldest",
     "whom", "during", "ever", "every", "each", "some", "many", "much"}
)  # fmt: skip
# Every word the answerer knows: what a typo is corrected towards.
_KNOWN: Final = tuple(
    sorted(
        set().union(*INTENT_WORDS.values())
        | {w for phrase in _STATUS_PHRASES for w in phrase.split()}
        | set(_CONDITIONS)
        | set(_ALERT_STATES)
        | set(SEVERITIES)
        | set(MONTHS)
        | {"excursions", "quarantined", "released", "rejected", "returned", "cancelled",
           "transit", "planned", "arrived", "yesterday", "critical", "offline", "shipments"}
    )
)  # fmt: skip

_GS1_START: Final = re.compile(r"(\(\d{2,4}\)\s*[^\s()]+\s*)+|(?:https?://|urn:epc:)\S+", re.I)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The names a question may use, read from the master data by the service."""

    sites: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    #: (GTIN-14, name)
    products: tuple[tuple[str, str], ...] = ()
    lanes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Question:
    """A question as understood: ``intent`` None when no intent was recognised."""

    text: str
    words: tuple[str, ...]
    intent: str | None
    identifiers: tuple[tuple[str, ParsedIdentifier], ...] = ()
    #: reference-like words, and the kind a preceding word gave them ("purchase_order"), if any
    references: tuple[tuple[str, str | None], ...] = ()
    origin: str | None = None
    destination: str | None = None
    place: str | None = None  # a site named with no direction: either end
    carrier: str | None = None
    product: tuple[str, str] | None = None  # (GTIN-14, name)
    lane: str | None = None
    lot: str | None = None
    statuses: tuple[str, ...] = ()
    condition: str | None = None
    severities: tuple[str, ...] = ()
    alert_states: tuple[str, ...] = ()
    period: Period | None = None
    #: words the question used that change what is asked (``battery``, ``calibration``,
    #: ``offline``, ``who``, ``count``, ``exposed``, ``recalled``, ``seen`` …)
    flags: frozenset[str] = field(default_factory=frozenset)
    #: words nobody understood (shown back to the asker when nothing was understood)
    unknown: tuple[str, ...] = ()
    #: identifiers written as GS1 (URI, element string) that do not read, with the reason
    unreadable: tuple[tuple[str, str], ...] = ()


def _identifiers(
    text: str, today: datetime
) -> tuple[list[tuple[str, ParsedIdentifier]], list[tuple[str, str]], str]:
    """GS1 identifiers in ``text``, those written as one (a URI, an element string) that do not
    read with the reason, and the text without either."""
    found: list[tuple[str, ParsedIdentifier]] = []
    bad: list[tuple[str, str]] = []
    rest = text
    for m in list(_GS1_START.finditer(text)):
        raw = m.group(0).strip().rstrip("?.,!")
        try:
            found.append((raw, parse_identifier(raw.replace(" ", ""), today=today.date())))
        except IdentifierError as error:
            bad.append((raw, str(error)))
        rest = rest.replace(m.group(0), " ")
    for word in re.findall(r"\b\d{8,20}\b", rest):
        try:
            parsed = parse_identifier(word, today=today.date())
        except IdentifierError:
            continue
        found.append((word, parsed))
        rest = rest.replace(word, " ")
    return found, bad, rest


def _is_reference_like(word: str) -> bool:
    """A word that may name a shipment, an external reference or a logger: letters and digits
    (``shp-0001``, ``log-7``, ``po5829``), or four digits or more."""
    has_digit = any(c.isdigit() for c in word)
    has_alpha = any(c.isalpha() for c in word)
    return (has_digit and has_alpha and len(word) >= 3) or (word.isdigit() and len(word) >= 4)


def _corrected(words: tuple[str, ...], keep: set[int]) -> list[str]:
    """The words with typos read as the known words they nearly are (``keep``: untouched)."""
    out = []
    for i, w in enumerate(words):
        if i in keep or w in _FILLER or w in _REFERENCE_WORDS:
            out.append(w)
        else:
            out.append(closest(w, _KNOWN) or w)
    return out


def _statuses(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for phrase in sorted(_STATUS_PHRASES, key=len, reverse=True):
        if re.search(rf"\b{re.escape(phrase)}\b", text):
            found.extend(s for s in _STATUS_PHRASES[phrase] if s not in found)
            text = text.replace(phrase, " ")
    return tuple(found)


def _intent(words: set[str], q: dict[str, object]) -> str | None:
    """The first intent of :data:`INTENTS` whose words the question uses, with the entities
    deciding between close ones; None when nothing points anywhere."""
    has = {name: bool(words & INTENT_WORDS[name]) for name in INTENTS}
    text = " ".join(sorted(words))
    if has["help"] or {"what", "can", "ask"} <= words:
        return "help"
    if has["audit"] or "changed" in text:
        return "audit"
    generic = {"list", "show", "which", "many", "count"}
    if has["people"] and not (words & INTENT_WORDS["shipments"]) - generic and not has["loggers"]:
        return "people"
    if has["loggers"] or q.get("logger_hint"):
        return "loggers"
    if q.get("lot") or (has["lot"] and not has["excursions"]):
        return "lot"
    if q.get("unit") or has["unit"]:
        return "unit"
    if has["excursions"]:
        return "excursions"
    if has["alerts"] or q.get("severities") or q.get("alert_states"):
        return "alerts"
    decided = words & {"released", "quarantined", "rejected", "returned"}
    if (has["qa"] and not (has["shipments"] and "awaiting" not in words)) or (
        decided and q.get("period")
    ):
        return "qa"
    if has["where"]:
        return "where"
    if has["status"]:
        return "status"
    filters = ("origin", "destination", "place", "carrier", "product", "lane", "statuses",
               "condition", "period")  # fmt: skip
    if has["shipments"] or any(q.get(f) for f in filters):
        if q.get("references") and not any(q.get(f) for f in filters) and not has["shipments"]:
            return "status"
        return "shipments"
    if q.get("references"):
        return "status"
    return None


def understand(question: str, vocabulary: Vocabulary, *, now: datetime) -> Question:
    """Read ``question``: its intent and entities (module docstring)."""
    ids, bad, rest = _identifiers(question, now)
    words = tokens(rest)
    used: set[int] = set()
    q: dict[str, object] = {}

    period = find_period(words, now)
    if period:
        q["period"], span = period
        used |= span

    # Lane codes first: "LANE-01" would otherwise look like a reference.
    for code in vocabulary.lanes:
        if code.lower() in words:
            q["lane"] = code
            used.add(words.index(code.lower()))

    # External references: "PO 5829", "order 12", "shipment SHP-1", "logger LOG-7".
    references: list[tuple[str, str | None]] = []
    for i, w in enumerate(words):
        if i in used:
            continue
        prev = words[i - 1] if i else ""
        if prev in ("lot", "batch") and i - 1 not in used:
            q["lot"] = _original(rest, w)
            used.add(i)
            continue
        if _is_reference_like(w) or (prev in _REFERENCE_WORDS and w.isdigit()):
            kind = _REFERENCE_WORDS.get(prev)
            if prev == "purchase" and w == "order":
                continue
            references.append((_original(rest, w), kind))
            used.add(i)
            if prev in ("logger", "device"):
                q["logger_hint"] = True
        m = re.fullmatch(r"(po|so)-?(\d+)", w)
        if m and references and references[-1][0].lower() == w:
            references[-1] = (references[-1][0], _REFERENCE_WORDS[m[1]])
    q["references"] = tuple(references)

    # Names from the master data, and their role in the sentence.
    free = [w if i not in used else "\0" for i, w in enumerate(words)]
    names: list[tuple[str, str]] = [(s, "site") for s in vocabulary.sites]
    names += [(c, "carrier") for c in vocabulary.carriers]
    names += [(name, "product") for _, name in vocabulary.products]
    # a product by the words of its name before its strength or size ("Vaccine X 10 ml")
    short = {_short_name(name): name for _, name in vocabulary.products}
    names += [(s, "product") for s in short if s and s not in dict(names)]
    kinds = {n: k for n, k in reversed(names)}
    for name, start, end in sorted(match_names(free, kinds), key=lambda m: m[1]):
        kind = kinds[name]
        used |= set(range(start, end))
        if kind == "carrier":
            q["carrier"] = name
        elif kind == "product":
            full = short.get(name, name)
            q["product"] = next(p for p in vocabulary.products if p[1] == full)
        else:
            prev = words[start - 1] if start else ""
            if prev in _ORIGIN_WORDS and "origin" not in q:
                q["origin"] = name
            elif (prev in _DESTINATION_WORDS and "destination" not in q) or (
                q.get("origin") and not q.get("destination") and prev in ("-", "and")
            ):
                q["destination"] = name
            else:
                if q.get("place") and not q.get("origin"):
                    q["origin"], q["destination"] = q.pop("place"), name
                else:
                    q["place"] = name
    for _raw, parsed in ids:
        if parsed.kind == "gtin" and parsed.lot:
            q["lot"] = parsed.lot
            q["product"] = next(
                (p for p in vocabulary.products if p[0] == parsed.gtin), (parsed.gtin, parsed.gtin)
            )
        elif parsed.kind == "gtin":
            q["product"] = next(
                (p for p in vocabulary.products if p[0] == parsed.gtin), (parsed.gtin, parsed.gtin)
            )
        else:
            q["unit"] = True
    corrected = _corrected(words, used)
    fixed = " ".join(c for i, c in enumerate(corrected) if i not in used)
    q["statuses"] = _statuses(fixed)
    word_set = {c for i, c in enumerate(corrected) if i not in used}
    condition = next((c for w, c in _CONDITIONS.items() if w in word_set), None)
    if condition == "offline" and word_set & INTENT_WORDS["loggers"]:
        condition = None
    q["condition"] = condition
    q["severities"] = tuple(s for s in SEVERITIES if s in word_set and s != "info")
    alert_words = word_set & INTENT_WORDS["alerts"]
    q["alert_states"] = next(
        (st for w, st in _ALERT_STATES.items() if w in word_set and (alert_words or w != "open")),
        (),
    )
    if q["alert_states"] == ("open", "acknowledged") and not alert_words:
        q["alert_states"] = ()
    severities: tuple[str, ...] = q["severities"]  # type: ignore[assignment]
    if condition == "warning" and "warning" in severities and not alert_words:
        q["severities"] = ()
    elif q["severities"]:
        q["condition"] = None
    if bad:
        q["unit"] = True
    intent = _intent(word_set, q)
    known = set().union(*INTENT_WORDS.values(), _FILLER, _KNOWN, _REFERENCE_WORDS)
    known |= _ORIGIN_WORDS | _DESTINATION_WORDS | {"api", "lane", "lanes", "carrier", "product"}
    unknown = tuple(c for i, c in enumerate(corrected) if i not in used and c not in known)
    flag_words = {"battery", "calibration", "offline", "who", "count", "many", "exposed",
                  "recalled", "seen", "signed", "awaiting", "released", "quarantined",
                  "rejected", "returned", "keys", "key", "sellable", "where"}  # fmt: skip
    return Question(
        text=question,
        words=tuple(corrected),
        intent=intent,
        identifiers=tuple(ids),
        references=q["references"],  # type: ignore[arg-type]
        origin=q.get("origin"),  # type: ignore[arg-type]
        destination=q.get("destination"),  # type: ignore[arg-type]
        place=q.get("place"),  # type: ignore[arg-type]
        carrier=q.get("carrier"),  # type: ignore[arg-type]
        product=q.get("product"),  # type: ignore[arg-type]
        lane=q.get("lane"),  # type: ignore[arg-type]
        lot=q.get("lot"),  # type: ignore[arg-type]
        statuses=q["statuses"],  # type: ignore[arg-type]
        condition=q["condition"],  # type: ignore[arg-type]
        severities=q["severities"],  # type: ignore[arg-type]
        alert_states=q["alert_states"],  # type: ignore[arg-type]
        period=q.get("period"),  # type: ignore[arg-type]
        flags=frozenset(word_set & flag_words),
        unknown=unknown,
        unreadable=tuple(bad),
    )


def _short_name(name: str) -> str | None:
    """A product name's words before the first one with a digit, if that leaves two or more
    words or one of six letters or more ("Vaccine X 10 ml" → "Vaccine X")."""
    words = name.split()
    cut = next((i for i, w in enumerate(words) if any(c.isdigit() for c in w)), len(words))
    short = words[:cut]
    if cut == len(words) or not short or (len(short) == 1 and len(short[0]) < 6):
        return None
    return " ".join(short)


def _original(text: str, folded: str) -> str:
    """The word as the question wrote it (``SHP-0001``, not ``shp-0001``)."""
    for raw in re.findall(r"[^\s,;:!?()\"']+", text):
        clean: str = raw.rstrip(".")
        if clean.lower() == folded:
            return clean
    return folded
