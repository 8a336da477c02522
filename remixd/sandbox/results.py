"""The images of an answer: rendered from the input, stored behind signed URLs, or withheld as unsafe."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from remixd.sandbox import images, reference
from remixd.sandbox.options import RULE_HEADER, Faults
from remixd.sandbox.validation import Order

if TYPE_CHECKING:
    from remixd.sandbox.app import Sandbox

_SEED_SPACE = reference.SEED_RANGE[1] + 1
_RULE = re.compile(r"[a-z0-9_-]{1,40}")  # a rule name as remixd's config allows it, short enough to show


def stamp_label(price_key: str, seed: int, image: tuple[int, int], rule: str | None) -> str:
    """What the stamp on a result says: a sandbox image, the rule that asked for it (when remixd named it), the
    model and price tier, the seed and which of the request's images it is (`image`: number, of how many)."""
    named = f"rule {rule}  " if rule else ""
    return f"SANDBOX  {named}{price_key}  seed {seed}  {image[0]}/{image[1]}"


def rule_of(headers: Mapping[str, str]) -> str | None:
    """The rule remixd named in RULE_HEADER (headers with lower-case names); None when absent or not a name."""
    value = headers.get(RULE_HEADER.lower(), "")
    return value if _RULE.fullmatch(value) else None


def make_items(
    sandbox: Sandbox,
    order: Order,
    faults: Faults,
    host: str | None,
    seed: int | None = None,
    *,
    stored_at: float | None = None,
    rule: str | None = None,
) -> list[dict[str, Any]]:
    """The answer's images: rendered, stored behind signed URLs, or withheld as unsafe. ``stored_at`` is when
    the images exist for the client (a generation made ahead of its end): their links expire from then.
    ``rule``: what remixd named in RULE_HEADER, for the stamp."""
    token = sandbox.options.unsafe_token
    unsafe = bool(token and token in order.prompt) or sandbox.take("unsafe_next")
    base = _url_base(sandbox, faults, host)
    answered_prompt = order.prompt
    if order.magic_prompt == "ON":
        # A visible rewrite, so clients that assume the answer echoes the prompt get caught.
        answered_prompt = f"{order.prompt}, in a richly detailed scene with soft natural light (magic prompt)"
    data = []
    for index in range(order.num_images):
        item_seed = _seed_for(sandbox, order.seed if seed is None else seed, index)
        withheld = unsafe and (faults.unsafe_items == 0 or index < faults.unsafe_items)
        item: dict[str, Any] = {
            "prompt": answered_prompt,
            "resolution": f"{order.width}x{order.height}",
            "is_image_safe": not withheld,
            "seed": item_seed,
            "style_type": order.style_type,
        }
        if withheld:
            if sandbox.options.unsafe_url != "absent":
                item["url"] = None if sandbox.options.unsafe_url == "null" else ""
        else:
            label = stamp_label(order.price_key, item_seed, (index + 1, order.num_images), rule)
            png = images.render(
                order.source,
                width=order.width,
                height=order.height,
                seed=item_seed,
                image_weight=order.image_weight,
                scale=sandbox.options.output_scale,
                label=label,
            )
            image_id, expires, signature = sandbox.store.put(png, sandbox.now() if stored_at is None else stored_at)
            item["url"] = f"{base}{reference.IMAGE_PATH_PREFIX}{image_id}.png?exp={expires}&sig={signature}"
        data.append(item)
    return data


def _seed_for(sandbox: Sandbox, seed: int | None, index: int) -> int:
    if seed is None:
        return secrets.randbelow(_SEED_SPACE)
    return (seed + index) % _SEED_SPACE if sandbox.options.multi_seed == "increment" else seed


def _url_base(sandbox: Sandbox, faults: Faults, host: str | None) -> str:
    if faults.url_base:
        return faults.url_base.rstrip("/")
    if sandbox.options.public_base_url:
        return sandbox.options.public_base_url.rstrip("/")
    if sandbox.use_host_header and host and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]{1,255}", host):
        return f"http://{host}"
    return sandbox.base_url
