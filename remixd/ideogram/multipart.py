"""A request as the multipart body Ideogram's remix routes take: the fields, the reference images, the source;
and that body encoded once, as it goes on the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from urllib3.fields import RequestField
from urllib3.filepost import encode_multipart_formdata

from remixd.errors import ApiRejected
from remixd.ideogram.requests import RemixRequest

Part = tuple[str, tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]]


@dataclass(frozen=True)
class Upload:
    """A request's body, encoded before it is needed: a job encodes its own before it waits for a place at the
    API, so neither the place nor the "sent" row waits for the encoding (python -m bench --only async_v2)."""

    body: bytes
    content_type: str


def encode(parts: list[Part]) -> Upload:
    """The parts as requests' `files=` encodes them: a part without a file name is a plain form field."""
    fields = []
    for name, (filename, data, *kind) in parts:
        field = RequestField(name=name, data=data, filename=filename)
        field.make_multipart(content_type=kind[0] if kind else None)
        fields.append(field)
    body, content_type = encode_multipart_formdata(fields)
    return Upload(body, content_type)


def multipart(request: RemixRequest, image: bytes, filename: str, content_type: str) -> list[Part]:
    """Legacy: an `image_request` JSON part + `image_file`. V_3 and v2: flat text fields, JSON objects
    (`color_palette`), repeated lists (`style_codes`), `true`/`false`, reference image files, and `image`
    (reference `ideogram-api.md` §1.1, §2; `ideogram-api-2026.md` §2)."""
    fields = request.wire_fields()
    parts: list[Part] = []
    if not request.is_v3():
        parts.append(("image_request", (None, json.dumps(fields).encode(), "application/json")))
    else:
        for name, value in fields.items():
            if isinstance(value, dict):
                parts.append((name, (None, json.dumps(value).encode(), "application/json")))
            elif isinstance(value, list | tuple):
                parts.extend((name, (None, str(item))) for item in value)
            elif isinstance(value, bool):
                parts.append((name, (None, "true" if value else "false")))
            else:
                parts.append((name, (None, str(value))))
    parts.extend((name, reference_file(Path(path))) for name, path in request.reference_files())
    parts.append((request.image_part_name(), (filename, image, content_type)))
    return parts


def reference_file(path: Path) -> tuple[str, bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ApiRejected(
            f"the reference image {path} cannot be read ({error.strerror})",
            "put the image back, or change the rule's reference paths and reload",
        ) from None
    kinds = {b"\x89PNG": "image/png", b"RIFF": "image/webp"}
    return path.name, data, next((kind for magic, kind in kinds.items() if data.startswith(magic)), "image/jpeg")
