"""Metadata inside every result: an XMP packet, and for PNG the sidecar itself (README, "Metadata inside the image").

A result keeps saying what made it after its sidecar is lost or the file is shared alone. The packet goes in
without decoding or re-encoding the pixels: a PNG gets `iTXt` chunks right after `IHDR` (readers that stop at
the first `IDAT` still see them), a JPEG an `APP1` XMP segment after `SOI`/`APP0`, a WebP an `XMP ` chunk (a
simple WebP is made extended, as the container requires). XMP already in the download is replaced, so a file
never carries two packets that disagree.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import remixd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
SIDECAR_KEYWORD = b"remixd"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_SEGMENT_MAX = 65533  # bytes after the marker and length fields of one segment
REMIXD_NAMESPACE = "urn:remixd:xmp:1.0/"
# IPTC's code for "created by a model trained on sampled content": what a remix is.
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


@dataclass(frozen=True)
class Story:
    """What the XMP packet says about one result."""

    prompt: str  # the final prompt: as the API returned it (magic prompt may rewrite it), else as sent
    source_sha256: str
    rule: str
    model: str
    seed: int | None
    created: str  # ISO 8601, when the API made it


def xmp_packet(story: Story) -> bytes:
    """An XMP packet (UTF-8) with the prompt as `dc:description`, the creator tool, IPTC's digital source
    type and remixd's own fields; exiftool shows them as XMP-dc, XMP-xmp, XMP-iptcExt and XMP-remixd."""

    def text(value: object) -> str:
        return escape(_NOT_XML.sub("", str(value)))

    seed = "" if story.seed is None else f"\n    <remixd:Seed>{story.seed}</remixd:Seed>"
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:remixd="{REMIXD_NAMESPACE}">
    <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text(story.prompt)}</rdf:li></rdf:Alt></dc:description>
    <xmp:CreatorTool>remixd {remixd.__version__}</xmp:CreatorTool>
    <xmp:CreateDate>{text(story.created)}</xmp:CreateDate>
    <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>
    <remixd:SourceSHA256>{text(story.source_sha256)}</remixd:SourceSHA256>
    <remixd:Rule>{text(story.rule)}</remixd:Rule>
    <remixd:Model>{text(story.model)}</remixd:Model>{seed}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8")


def embed(data: bytes, extension: str, story: Story, sidecar: Mapping[str, Any]) -> bytes:
    """`data` with the packet (and for PNG the compact sidecar) inside; the pixels are untouched.

    Raises ValueError when `data` is not a well-formed image of that format."""
    packet = xmp_packet(story)
    if extension == "png":
        compact = json.dumps(sidecar, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return _png(data, [_itxt(XMP_KEYWORD, packet), _itxt(SIDECAR_KEYWORD, compact)])
    if extension == "jpg":
        return _jpeg(data, packet)
    if extension == "webp":
        return _webp(data, packet)
    raise ValueError(f"cannot embed metadata in .{extension} files")


# -- PNG ----------------------------------------------------------------------------------------------------


def _itxt(keyword: bytes, text: bytes) -> bytes:
    # keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword, the text
    return _png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + text)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(data: bytes, chunks: list[bytes]) -> bytes:
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    out = [PNG_SIGNATURE]
    position = len(PNG_SIGNATURE)
    while position < len(data):
        if position + 12 > len(data):
            raise ValueError("a PNG chunk is cut short")
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            raise ValueError("a PNG chunk is cut short")
        body = data[position + 8 : position + 8 + length]
        replaced = kind == b"iTXt" and body.split(b"\x00", 1)[0] in (XMP_KEYWORD, SIDECAR_KEYWORD)
        if not replaced:
            out.append(data[position:end])
        if kind == b"IHDR":
            out.extend(chunks)
        position = end
    return b"".join(out)


# -- JPEG ---------------------------------------------------------------------------------------------------


_MARKER, _SOS, _APP0, _APP1 = 0xFF, 0xDA, 0xE0, 0xE1


def _jpeg(data: bytes, packet: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    payload = JPEG_XMP_HEADER + packet
    if len(payload) > JPEG_SEGMENT_MAX:
        raise ValueError("the XMP packet is too long for one JPEG segment")
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    out, position, inserted = [b"\xff\xd8"], 2, False
    # Walk the header segments up to the start of scan; everything from there on is copied as it is.
    while position + 4 <= len(data) and data[position] == _MARKER:
        marker = data[position + 1]
        if marker == _SOS:
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if end > len(data):
            raise ValueError("a JPEG segment is cut short")
        if not inserted and marker != _APP0:  # after the JFIF APP0, which must come first
            out.append(segment)
            inserted = True
        if not (marker == _APP1 and data[position + 4 : position + 4 + len(JPEG_XMP_HEADER)] == JPEG_XMP_HEADER):
            out.append(data[position:end])
        position = end
    if not inserted:
        out.append(segment)
    out.append(data[position:])
    return b"".join(out)


# -- WebP ---------------------------------------------------------------------------------------------------

_RIFF_HEADER = 12  # "RIFF", size, "WEBP"
_VP8_START = b"\x9d\x01\x2a"  # after a lossy key frame's 3-byte tag, before its width and height
_VP8_HEADER = 10  # frame tag, start code, width, height
_VP8L_SIGNATURE = 0x2F
_VP8L_HEADER = 5  # signature, then width, height and the alpha bit in 4 bytes
_VP8X_XMP = 0x04
_VP8X_ALPHA = 0x10


def _webp(data: bytes, packet: bytes) -> bytes:
    if len(data) < _RIFF_HEADER + 8 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    chunks: list[tuple[bytes, bytes]] = []
    position = _RIFF_HEADER
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) != length:
            raise ValueError("a WebP chunk is cut short")
        if kind != b"XMP ":
            chunks.append((kind, body))
        position += 8 + length + (length & 1)
    if not chunks:
        raise ValueError("a WebP file without image data")
    if chunks[0][0] == b"VP8X":
        extended = chunks[0][1]
        chunks[0] = (b"VP8X", bytes([extended[0] | _VP8X_XMP]) + extended[1:])
    else:
        width, height, alpha = _webp_canvas(*chunks[0])
        flags = _VP8X_XMP | (_VP8X_ALPHA if alpha else 0)
        header = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", header))
    chunks.append((b"XMP ", packet))
    body = b"WEBP" + b"".join(
        kind + struct.pack("<I", len(content)) + content + (b"\x00" if len(content) & 1 else b"")
        for kind, content in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_canvas(kind: bytes, body: bytes) -> tuple[int, int, bool]:
    """(width, height, has alpha) of a simple WebP's one image chunk."""
    if kind == b"VP8 " and body[3:6] == _VP8_START and len(body) >= _VP8_HEADER:
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if kind == b"VP8L" and body[:1] == bytes([_VP8L_SIGNATURE]) and len(body) >= _VP8L_HEADER:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise ValueError("a WebP file whose image data remixd does not know")
