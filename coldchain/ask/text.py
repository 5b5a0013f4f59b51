"""Words of a question: normalising, tokenising and typo-tolerant matching (pure).

Typos are forgiven with :mod:`difflib` (the standard library's ratio of matching characters):
a word of four letters or more that is not one the answerer knows is read as the nearest known
word when they agree on at least :data:`WORD_CUTOFF` of their characters ("excurions" →
"excursions", "quarantied" → "quarantined"); names (sites, carriers, products) the same with
:data:`NAME_CUTOFF`. No new dependency: rapidfuzz is faster, but the vocabularies here are a few
hundred words and names, which difflib compares in well under a millisecond.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "NAME_CUTOFF",
    "WORD_CUTOFF",
    "closest",
    "fold",
    "match_names",
    "tokens",
]

#: How alike a misspelt word and a known one must be (difflib ratio) to be read as it.
WORD_CUTOFF: Final = 0.8
#: How alike a name in the question and a known name must be.
NAME_CUTOFF: Final = 0.8

_TOKEN: Final = re.compile(r"[a-z0-9][a-z0-9._/-]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)


def fold(text: str) -> str:
    """Lower case without accents, arrows and dashes as spaces: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[→>\u2013\u2014,;:!?()\"']", " ", plain.lower()).split())


def tokens(text: str) -> tuple[str, ...]:
    """The words of ``text``, folded; identifiers such as ``SHP-0001`` or ``PO-5829`` stay one
    word (a trailing full stop or question mark is dropped)."""
    return tuple(m.group(0) for m in _TOKEN.finditer(fold(text)))


def closest(word: str, known: Sequence[str], cutoff: float = WORD_CUTOFF) -> str | None:
    """The known word nearest ``word`` (itself if known); None when none is alike enough or
    the word is too short to tell a typo from another word."""
    if word in known:
        return word
    if len(word) < 4 or any(c.isdigit() for c in word):
        return None
    found = difflib.get_close_matches(word, known, n=1, cutoff=cutoff)
    return found[0] if found else None


def match_names(
    words: Sequence[str], names: Iterable[str], cutoff: float = NAME_CUTOFF
) -> list[tuple[str, int, int]]:
    """Each known name that appears in ``words`` (exactly or nearly, as many words as the name
    has), as ``(name, first word, word after the last)``, the longest names first and without
    overlaps."""
    found: list[tuple[float, str, int, int]] = []
    for name in names:
        folded = tokens(name)
        if not folded:
            continue
        n = len(folded)
        target = " ".join(folded)
        for i in range(len(words) - n + 1):
            window = " ".join(words[i : i + n])
            if window == target:
                found.append((2.0 + n, name, i, i + n))
            elif len(target) >= 4 and not any(c.isdigit() for c in window):
                ratio = difflib.SequenceMatcher(None, window, target).ratio()
                if ratio >= cutoff:
                    found.append((ratio + n, name, i, i + n))
    found.sort(key=lambda f: (-f[0], f[2]))
    taken: set[int] = set()
    out: list[tuple[str, int, int]] = []
    for _, name, start, end in found:
        if taken.isdisjoint(range(start, end)):
            taken.update(range(start, end))
            out.append((name, start, end))
    return out
