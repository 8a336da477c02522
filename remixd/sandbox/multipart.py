"""A small, strict multipart/form-data parser (RFC 7578) that never raises anything but MultipartError.

Hand-written rather than ``cgi`` (removed in 3.13) or ``email`` (which guesses instead of refusing): the
sandbox must answer every malformed body with a 400, so every failure path here is explicit.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

MAX_PARTS = 256
MAX_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY_LENGTH = 70  # RFC 2046

# token or quoted-string parameter values, as in RFC 7231 section 3.1.1.1
_PARAM = re.compile(
    r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\\r\n]|\\.)*"|[^;\s"]*)\s*',
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data; the message says why, for the 400 detail."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None  # as sent, None when the part had no Content-Type header
    data: bytes

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MultipartError(f"part {self.name!r} is not valid UTF-8 text") from error


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="a"`` -> ("form-data", {"name": "a"}). Parameter names are lower-cased."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    rest = ";" + rest if rest else ""
    position = 0
    while position < len(rest):
        if not rest[position:].strip(" \t;"):
            break  # a trailing ";" is sloppy but unambiguous
        match = _PARAM.match(rest, position)
        if match is None:
            raise MultipartError(f"malformed header parameters in {value[:80]!r}")
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
        position = match.end()
    return main.strip().lower(), params


def boundary_from_content_type(content_type: str | None) -> bytes:
    if not content_type:
        raise MultipartError("Content-Type must be multipart/form-data")
    kind, params = parse_header_value(content_type)
    if kind != "multipart/form-data":
        raise MultipartError(f"Content-Type must be multipart/form-data, not {kind or 'empty'!r}")
    boundary = params.get("boundary", "")
    # RFC 2046: 1 to 70 characters from a restricted set
    if not 1 <= len(boundary) <= MAX_BOUNDARY_LENGTH or not re.fullmatch(
        r"[0-9A-Za-z'()+_,./:=? -]*[0-9A-Za-z'()+_,./:=?-]", boundary
    ):
        raise MultipartError("multipart/form-data needs a valid boundary parameter")
    return boundary.encode("ascii")


def parse_multipart(body: bytes, content_type: str | None) -> list[Part]:
    """Split ``body`` into parts. Requires the closing delimiter, so a truncated upload is refused."""
    boundary = boundary_from_content_type(content_type)
    delimiter = b"\r\n--" + boundary
    # The first delimiter may start the body without a preceding CRLF; a virtual CRLF keeps one split rule.
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) == 1:
        raise MultipartError("no multipart boundary found in the body")
    parts: list[Part] = []
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            break
        parts.append(_parse_part(chunk))
        if len(parts) > MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
    if not closed:
        raise MultipartError("multipart body is not terminated by the closing boundary (truncated?)")
    return parts


def _parse_part(chunk: bytes) -> Part:
    # After the delimiter: optional transport padding (spaces/tabs), then CRLF, then headers.
    line_end = chunk.find(b"\r\n")
    if line_end < 0 or chunk[:line_end].strip(b" \t"):
        raise MultipartError("garbage after a multipart boundary")
    rest = chunk[line_end + 2 :]
    header_end = rest.find(b"\r\n\r\n")
    if rest.startswith(b"\r\n"):
        raw_headers, data = b"", rest[2:]
    elif header_end < 0:
        raise MultipartError("a multipart part has no blank line after its headers")
    else:
        raw_headers, data = rest[:header_end], rest[header_end + 4 :]
    if len(raw_headers) > MAX_HEADER_BYTES:
        raise MultipartError("multipart part headers are too long")
    headers = _parse_headers(raw_headers)
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MultipartError("a multipart part has no Content-Disposition header")
    kind, params = parse_header_value(disposition)
    if kind != "form-data":
        raise MultipartError(f"Content-Disposition must be form-data, not {kind!r}")
    name = params.get("name")
    if not name:
        raise MultipartError("a multipart part has no name")
    filename = params.get("filename")
    if "filename*" in params:
        filename = _decode_extended(params["filename*"])
    return Part(name=name, filename=filename, content_type=headers.get("content-type"), data=data)


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not raw:
        return headers
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # some clients send raw latin-1 filenames; harmless here
    for line in text.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name):
            raise MultipartError(f"malformed multipart header line {line[:80]!r}")
        key = name.lower()
        if key in headers:
            raise MultipartError(f"duplicate {name} header in a multipart part")
        headers[key] = value.strip()
    return headers


def _decode_extended(value: str) -> str:
    """RFC 5987 ``utf-8''na%C3%AFve.png``."""
    charset, _, encoded = value.partition("'")
    _, _, encoded = encoded.partition("'")
    try:
        return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError) as error:
        raise MultipartError("malformed filename* parameter") from error
