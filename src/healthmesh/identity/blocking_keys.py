"""Phonetic and coarse keys used to build blocking groups (plaintext and, keyed, for PPRL)."""

from __future__ import annotations

_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


def soundex(text: str) -> str:
    """American Soundex code (letter + 3 digits) of a romanised name; ``""`` if no letters.

    >>> soundex("robert"), soundex("rupert"), soundex("ashcraft")
    ('R163', 'R163', 'A261')
    """
    letters = [c for c in text.lower() if "a" <= c <= "z"]
    if not letters:
        return ""
    first = letters[0]
    out: list[str] = []
    last = first.translate(_SOUNDEX)
    for ch in letters[1:]:
        code = ch.translate(_SOUNDEX)
        if code.isdigit():
            if code != last:
                out.append(code)
            last = code
        elif ch not in "hw":
            last = ""
    return (first.upper() + "".join(out) + "000")[:4]
