"""From the bytes of a file or an MLLP frame to single HL7 v2 messages as text.

Real feeds are messy: a UTF-8 byte-order mark, LF or CRLF instead of CR between segments,
FHS/BHS batch envelopes, several messages in one file, and character sets declared in MSH-18
(GB 18030 and UTF-8 for Chinese names). This module splits on bytes first (segment and
message boundaries are ASCII and never occur inside GB 18030 multi-byte characters), then
decodes each message with its own MSH-18 charset. python-hl7 parses only text and leaves
charsets and batches to the caller, which is why this part is ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

#: MSH-18 values (HL7 table 0211 and common local spellings) -> Python codec
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GB 18030": "gb18030",
    "ISO IR58": "gb18030",  # GB 2312; GB 18030 is a superset
    "GB2312": "gb18030",
    "GBK": "gb18030",
    "BIG-5": "big5",
    "BIG5": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "KS X 1001": "euc_kr",
}

_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
_LINE_SPLIT = re.compile(rb"\r\n|\n|\r")


class DecodeError(Exception):
    """A message whose bytes cannot be read as text; ``location`` names the field."""

    def __init__(self, reason: str, location: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location


@dataclass
class RawMessage:
    """One message cut from a file or stream: its bytes (segments ended by CR), its number."""

    number: int  # 1-based position in the source
    data: bytes
    notes: list[str] = field(default_factory=list)


@dataclass
class TextMessage:
    """A message decoded to text with CR segment separators."""

    text: str
    charset: str
    notes: list[str] = field(default_factory=list)


def split_messages(data: bytes) -> Iterator[RawMessage]:
    """Cut a file's bytes into messages: BOM removed, segment ends normalised to CR, batch
    envelopes (FHS/BHS/BTS/FTS) dropped, one message per MSH.

    Lines before the first MSH that are not batch segments become a message of their own,
    so that they reach quarantine instead of vanishing.

    >>> data = b"\\xef\\xbb\\xbfMSH|^~\\\\&|A\\nPID|1\\n\\nMSH|^~\\\\&|B\\r"
    >>> [m.data for m in split_messages(data)]
    [b'MSH|^~\\\\&|A\\rPID|1\\r', b'MSH|^~\\\\&|B\\r']
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    current: list[bytes] = []
    notes: list[str] = []
    batch_notes: list[str] = []
    number = 0
    for line in _LINE_SPLIT.split(data):
        line = line.lstrip(b"\x00\x0b\x1c \t")
        if line.startswith(b"\xef\xbb\xbf"):  # concatenated files keep their own BOM
            line = line[3:]
        if not line.strip():
            continue
        head = line[:3]
        if head in _BATCH_SEGMENTS:
            if head in (b"FHS", b"BHS"):
                batch_notes.append(f"{head.decode()} batch header skipped")
            continue
        if head == b"MSH" and current:
            number += 1
            yield RawMessage(number, b"\r".join(current) + b"\r", notes)
            current, notes = [], []
        if not current:
            notes = list(dict.fromkeys(batch_notes))
        current.append(line)
    if current:
        number += 1
        yield RawMessage(number, b"\r".join(current) + b"\r", notes)


def declared_charset(data: bytes) -> str:
    """MSH-18 of a message as written (empty when absent), read without decoding the rest."""
    if not data.startswith(b"MSH") or len(data) < 4:
        return ""
    sep = data[3:4]
    first = data.split(b"\r", 1)[0]
    parts = first.split(sep)
    if len(parts) < 18:
        return ""
    rep = data[5:6] if len(data) > 5 else b"~"
    value = parts[17].split(rep, 1)[0] if rep else parts[17]
    return value.decode("latin-1").strip()


def decode_message(raw: RawMessage) -> TextMessage:
    """Decode one message with its MSH-18 charset.

    Without MSH-18 the bytes are tried as UTF-8, then as GB 18030 (the usual legacy encoding
    of Chinese hospital systems), and a note says which was used.

    Raises
    ------
    DecodeError
        When the message does not start with MSH, the charset is unknown, or the bytes are
        not valid in it.
    """
    data = raw.data
    if not data.startswith(b"MSH"):
        raise DecodeError("message does not start with an MSH segment", "MSH")
    if len(data) < 8:
        raise DecodeError("MSH segment too short for the encoding characters", "MSH-2")
    notes = list(raw.notes)
    declared = declared_charset(data)
    if declared:
        codec = CHARSETS.get(declared.upper())
        if codec is None:
            raise DecodeError("unknown character set in MSH-18", "MSH-18")
        try:
            return TextMessage(data.decode(codec), codec, notes)
        except UnicodeDecodeError:
            if codec != "ascii":
                raise DecodeError(
                    "bytes are not valid in the character set declared in MSH-18", "MSH-18"
                ) from None
            notes.append("MSH-18 declares ASCII but the message has non-ASCII bytes: read as UTF-8")
            declared = ""
    for codec in ("utf-8", "gb18030"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec != "utf-8":
            notes.append("no usable MSH-18: bytes read as GB 18030")
        return TextMessage(text, codec, notes)
    raise DecodeError("bytes are neither UTF-8 nor GB 18030 and MSH-18 is empty", "MSH-18")
