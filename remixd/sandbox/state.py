"""The sandbox's memory: stored result images behind signed URLs, the ledger, the in-flight count, the record
of what arrived. Each class guards itself with its own lock; handler threads share them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MAX_EXPIRY_DIGITS = 12  # int() of a huge digit string is slow; no real expiry is that long


@dataclass(frozen=True)
class PartInfo:
    name: str
    filename: str | None
    content_type: str | None
    bytes: int


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the sandbox saw it, for tests to assert on what the client really sent."""

    method: str
    path: str
    auth_scheme: str | None  # the scheme accepted, else the one(s) presented ("api-key+bearer"), else None
    key_valid: bool
    fields: Any  # legacy: the image_request object as parsed; v3: the flat text fields (repeated -> list)
    image_part: str | None  # "image_file" or "image" when present
    filename: str | None
    content_type: str | None
    sha256: str | None
    bytes: int | None
    parts: tuple[PartInfo, ...]
    status: int | None  # None: the connection was reset instead of answered
    billed_usd: float
    at: float  # the sandbox clock when the answer was decided
    arrived: float | None = None  # the sandbox clock when the whole request had arrived, before any check
    ignored_fields: tuple[str, ...] = ()  # fields the route does not read (v2 ignores them silently)
    dry_run: bool = False
    header_names: tuple[str, ...] = ()  # lower-case: what a client sends besides Ideogram's own shows here


@dataclass(frozen=True)
class Ledger:
    requests: int = 0
    images: int = 0
    usd: float = 0.0
    by_price: tuple[tuple[str, int], ...] = ()  # (price key, images), e.g. ("V_2", 3), ("V_3:TURBO", 1)


class Accounts:
    """What the sandbox has billed: price x num_images per completed request (unsafe items included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._images = 0
        self._usd = Decimal(0)
        self._by_price: dict[str, int] = {}

    def charge(self, price_key: str, price_per_image: Decimal, images: int) -> Decimal:
        amount = price_per_image * images
        with self._lock:
            self._requests += 1
            self._images += images
            self._usd += amount
            self._by_price[price_key] = self._by_price.get(price_key, 0) + images
        return amount

    def snapshot(self) -> Ledger:
        with self._lock:
            return Ledger(self._requests, self._images, float(self._usd), tuple(sorted(self._by_price.items())))

    def reset(self) -> None:
        with self._lock:
            self._requests, self._images, self._usd, self._by_price = 0, 0, Decimal(0), {}


class InflightCounter:
    """Images in progress across all keys; the limit is checked and taken in one step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._images = 0

    def try_acquire(self, images: int, limit: int) -> bool:
        with self._lock:
            if self._images + images > limit:
                return False
            self._images += images
            return True

    def release(self, images: int) -> None:
        with self._lock:
            self._images -= images

    @property
    def images(self) -> int:
        with self._lock:
            return self._images


@dataclass(frozen=True)
class Lookup:
    status: int  # 200, 403 bad signature, 404 unknown, or the expired status
    data: bytes | None
    reason: str  # "ok", "signature", "unknown", "expired"


class ImageStore:
    """Result PNGs behind ``<id>.png?exp=<unix s>&sig=<HMAC-SHA256(secret, id + exp)>`` URLs.

    Bounded: expired images are forgotten on every access and the oldest go first past ``max_images`` or
    ``max_bytes``.
    The signature is checked without the store, so an expired URL is told apart from a forged one even after
    its image is gone.
    """

    def __init__(self, secret: bytes, ttl_s: int, max_images: int, max_bytes: int, expired_status: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s
        self._max_images = max_images
        self._max_bytes = max_bytes
        self._bytes = 0
        self._expired_status = expired_status
        self._lock = threading.Lock()
        self._images: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def put(self, data: bytes, now: float) -> tuple[str, int, str]:
        """Store ``data``; returns (id, exp, sig)."""
        image_id = "".join(secrets.choice(_BASE62) for _ in range(22))
        expires = int(now) + self._ttl_s
        with self._lock:
            self._forget_expired(now)
            self._images[image_id] = (expires, data)
            self._bytes += len(data)
            while len(self._images) > self._max_images or self._bytes > self._max_bytes:
                _, (_, dropped) = self._images.popitem(last=False)
                self._bytes -= len(dropped)
        return image_id, expires, self.sign(image_id, expires)

    def sign(self, image_id: str, expires: int) -> str:
        return hmac.new(self._secret, f"{image_id}{expires}".encode(), hashlib.sha256).hexdigest()

    def lookup(self, image_id: str, expires_text: str | None, signature: str | None, now: float) -> Lookup:
        if (
            expires_text is None
            or signature is None
            or not expires_text.isdigit()
            or len(expires_text) > _MAX_EXPIRY_DIGITS
        ):
            return Lookup(403, None, "signature")
        expires = int(expires_text)
        if not hmac.compare_digest(self.sign(image_id, expires).encode(), signature.lower().encode()):
            return Lookup(403, None, "signature")
        with self._lock:
            self._forget_expired(now)
            stored = self._images.get(image_id)
        if now > expires:
            return Lookup(self._expired_status, None, "expired")
        if stored is None or stored[0] != expires:
            return Lookup(404, None, "unknown")
        return Lookup(200, stored[1], "ok")

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
            self._bytes = 0

    def _forget_expired(self, now: float) -> None:
        expired = [key for key, (expires, _) in self._images.items() if now > expires]
        for key in expired:
            self._bytes -= len(self._images.pop(key)[1])


@dataclass(frozen=True)
class DownloadRecord:
    image_id: str
    status: int
    truncated: bool
    at: float


@dataclass
class RecordDraft:
    """A ReceivedRequest under construction while the request moves through the checks."""

    path: str
    auth_scheme: str | None = None
    key_valid: bool = False
    fields: Any = None
    parts: tuple[PartInfo, ...] = ()
    image: Any = None  # the image Part, if any
    billed: Decimal = field(default_factory=Decimal)
    method: str = "POST"
    ignored_fields: tuple[str, ...] = ()
    dry_run: bool = False
    header_names: tuple[str, ...] = ()
    arrived: float | None = None

    def freeze(self, status: int | None, now: float) -> ReceivedRequest:
        image = self.image
        return ReceivedRequest(
            method=self.method,
            path=self.path,
            auth_scheme=self.auth_scheme,
            key_valid=self.key_valid,
            fields=self.fields,
            image_part=image.name if image else None,
            filename=image.filename if image else None,
            content_type=image.content_type if image else None,
            sha256=hashlib.sha256(image.data).hexdigest() if image else None,
            bytes=len(image.data) if image else None,
            parts=self.parts,
            status=status,
            billed_usd=float(self.billed),
            at=now,
            arrived=self.arrived,
            ignored_fields=self.ignored_fields,
            dry_run=self.dry_run,
            header_names=self.header_names,
        )
