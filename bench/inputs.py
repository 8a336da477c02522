"""Bench inputs: distinct images (remixd records identical content as a duplicate and never sends it) and the
config remixd runs with."""

from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

REQUEST = {
    "prompt": "A serene tropical beach, {stem}",
    "model": "V_2",
    "aspect_ratio": "ASPECT_1_1",
    "image_weight": 50,
    "seed": 12345,
}
NAIVE_REQUEST = {**REQUEST, "prompt": "A serene tropical beach"}


def small_image(number: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A tiny PNG whose content is unique to `number` (the number is written into the pixels)."""
    image = Image.new("RGB", size, (number % 251, (number // 251) % 251, (number // 63001) % 251))
    image.putpixel((0, 0), (number & 0xFF, (number >> 8) & 0xFF, (number >> 16) & 0xFF))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def small_jpeg(number: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small JPEG (a few KB) whose content is unique to `number`."""
    image = Image.open(io.BytesIO(small_image(number, size)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def photo_jpeg(number: int, target_bytes: int = 2 * 1024 * 1024) -> bytes:
    """A camera-like JPEG of about `target_bytes`: 12 MP would be bigger, so the size is chosen to land near
    the target with photographic noise (a flat image compresses to almost nothing)."""
    rng = random.Random(number)
    width, height = 2048, 1536  # 3 MP
    base = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    image = Image.blend(base, noise, 0.35)
    image.putpixel((0, 0), (number & 0xFF, (number >> 8) & 0xFF, 7))
    for quality in (95, 92, 88, 84, 80, 75, 70):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= target_bytes * 1.1:
            return buffer.getvalue()
    return buffer.getvalue()


def write_files(folder: Path, names_and_data: list[tuple[str, bytes]], age_s: float = 0.0) -> list[Path]:
    """Write the files; `age_s` back-dates their mtime, so a scan finds them already settled."""
    paths = []
    for name, data in names_and_data:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if age_s:
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(age_s * 1e9)))
        paths.append(path)
    return paths


def age(folder: Path, age_s: float) -> None:
    """Back-date every file under `folder`, so the start-up scan finds them settled (no settle_s wait)."""
    moment = time.time() - age_s
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (moment, moment))


def write_config(
    root: Path,
    base_url: str,
    *,
    max_in_flight: int = 10,
    inbox: dict[str, Any] | None = None,
    timeout_s: float = 60,
    budget: dict[str, Any] | None = None,
) -> Path:
    """root/remixd.yaml: one inbox root/inbox -> root/outbox, done/failed beside it, the poster rule."""
    inbox_section: dict[str, Any] = {
        "path": "./inbox",
        "output": "./outbox",
        "done_dir": "./done",
        "failed_dir": "./failed",
        "settle_s": 0.2,
    }
    inbox_section.update(inbox or {})
    document = {
        "api": {"sandbox": False, "base_url": base_url, "max_in_flight_images": max_in_flight, "timeout_s": timeout_s},
        "state_dir": "./state",
        "shutdown_grace_s": 30,
        "inboxes": [inbox_section],
        "rules": [{"name": "poster", "match": ["*.jpg", "*.jpeg", "*.png", "*.webp"], "request": REQUEST}],
    }
    if budget is not None:
        document["budget"] = budget
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    path = root / "remixd.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
