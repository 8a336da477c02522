"""A request as the multipart body Ideogram's remix routes take: the fields, the reference images, the source."""

from __future__ import annotations

import json
from pathlib import Path

from remixd.errors import ApiRejected
from remixd.ideogram.requests import RemixRequest

Part = tuple[str, tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]]


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
