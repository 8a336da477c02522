"""What an answer of Ideogram's API means: the status table, the gateway's wrapper, and a broken connection.

Each becomes one error of the tree in `remixd.errors`, carrying what the worker needs to decide well:
`ApiUnavailable.sent` says whether the request may have run (and been billed), `retry_after` and
`inflight_limit` come from a 429 (README, "Retries never pay twice").
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import requests
import urllib3.exceptions
from pydantic import ValidationError

from remixd.errors import ApiError, ApiRejected, ApiUnavailable, AuthError, PaymentRequired
from remixd.ideogram.http import json_or_text, message_of, reason_of, retry_after_s, short_url, snippet
from remixd.ideogram.responses import RemixResponse

SAFETY_HINT = "the prompt or image failed Ideogram's safety check; change the prompt or the image"
UNKNOWN_OUTCOME = "the outcome is unknown: Ideogram may have run and billed it"
_BILLING_REASONS = ("insufficient_funds", "daily_limit", "credit", "balance", "quota", "subscription", "feature_limit")
# 402's reject_reason (reference `ideogram-api-2026.md` §7): what it means, and what the user can do.
PAYMENT_REASONS = {
    "insufficient_funds": ("the account's balance is used up", "top up the balance on Ideogram's billing page"),
    "daily_limit": ("the account's daily spending limit is reached", "raise the daily limit, or wait for tomorrow"),
    "subscription_required": ("this needs an API subscription", "subscribe to an API plan that includes it"),
    "priority_credit_required": ("this needs priority credits", "buy priority credits, or use another route"),
    "feature_limit": ("the plan does not include this feature", "upgrade the plan, or remove the feature"),
}
# Ideogram answers 401 to a valid key whose account balance reached zero (reference `ideogram-api-2026.md` §7).
ZERO_BALANCE_HINT = "A valid key is refused too when the account's balance reaches zero: check it on Ideogram"
_BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)
# Failures that happen before a byte of the request left: resending cannot double-bill.
_NEVER_CONNECTED = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.SSLError,
    requests.exceptions.ProxyError,
)
_NEVER_CONNECTED_REASONS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


def status_error(  # noqa: PLR0911  # one return per row of the status table
    response: requests.Response, body: bytes, *, auth_hint: str, now: float
) -> ApiError:
    """The error an answer that is not a success means; `auth_hint` says where the key came from, `now` is
    the wall clock a Retry-After date is counted from."""
    status = response.status_code
    document = json_or_text(body)
    said = message_of(document) or response.reason or "no message"
    reject_reason = document.get("reject_reason") if isinstance(document, dict) else None
    retry_after = retry_after_s(response.headers.get("Retry-After"), now)
    common: dict[str, Any] = {"http_status": status, "response": document}
    if status == HTTPStatus.PAYMENT_REQUIRED or (
        isinstance(reject_reason, str) and any(word in reject_reason for word in _BILLING_REASONS)
    ):
        why, fix = PAYMENT_REASONS.get(str(reject_reason), PAYMENT_REASONS["insufficient_funds"])
        return PaymentRequired(
            f"the API refused to run more work ({status}{f' {reject_reason}' if reject_reason else ''}): {why}"
            f" ({said})",
            f"{fix}; submissions pause until then, and remixd checks with a free price quote when it may resume",
            **common,
        )
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return AuthError(f"the API refused the key ({status}): {said}", f"{auth_hint}. {ZERO_BALANCE_HINT}", **common)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        # A 429 is rejected before it runs and is not billed (reference §4.1), hence sent=False.
        return ApiUnavailable(
            f"the API is busy (429{f' {reject_reason}' if reject_reason else ''}): {said}",
            "remixd waits and tries again; lower api.max_in_flight_images if this keeps happening",
            sent=False,
            retry_after=retry_after,
            inflight_limit=reject_reason == "inflight_limit",
            **common,
        )
    if status == HTTPStatus.REQUEST_TIMEOUT:  # the server gave up waiting for our request: it never ran
        return ApiUnavailable(f"the API timed out reading the upload (408): {said}", sent=False, **common)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ApiUnavailable(
            f"the API failed ({status}): {said}",
            "Ideogram bills no failed generation, so remixd sends it again after a pause",
            sent=True,
            retry_after=retry_after,
            **common,
        )
    if HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST:
        location = response.headers.get("Location", "?")
        return ApiRejected(
            f"the API answered {status}, a redirect to {short_url(location)}",
            "set api.base_url to the final address (remixd does not resend an upload to another place)",
            **common,
        )
    hints: dict[int, str] = {
        HTTPStatus.BAD_REQUEST: (
            "the API found the request invalid; compare the rule's request with the API reference"
        ),
        HTTPStatus.NOT_FOUND: (
            "no such endpoint: check api.base_url (a gateway usually needs its prefix, e.g. /ideogram)"
        ),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "the image is over the API's upload limit; lower its size or resolution",
        HTTPStatus.UNPROCESSABLE_ENTITY: SAFETY_HINT,
    }
    hint = hints.get(status, "the API refused this request; sending it again gives the same answer")
    return ApiRejected(f"the API rejected the request ({status}): {said}", hint, **common)


def parse_success(body: bytes, status: int) -> RemixResponse:
    """Ideogram's native body; a gateway's `{code, message, request_id, data}` wrapper only around it.

    A 200 that does not parse is not retried (ApiRejected): it ran and was probably billed, and the same
    gateway answers the same way again.
    """
    document = json_or_text(body)
    if isinstance(document, dict) and isinstance(document.get("data"), dict) and "code" in document:
        inner = document["data"]
        if "task_id" in inner and "created" not in inner:
            raise ApiRejected(
                f"the API answered {status} with an asynchronous task ({snippet(document)})",
                "this gateway does not answer with results; use one that passes Ideogram's answer through",
                http_status=status,
                response=document,
            )
        document = inner
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = {**document, "data": [withhold_unsafe(item) for item in document["data"]]}
    try:
        return RemixResponse.model_validate(document)
    except ValidationError:
        raise ApiRejected(
            f"the API answered {status} with an unexpected body: {snippet(document)}",
            f"check api.base_url points at Ideogram or a pass-through gateway; {UNKNOWN_OUTCOME}",
            http_status=status,
            response=document,
        ) from None


def withhold_unsafe(item: Any) -> Any:
    """An item marked unsafe has no image, whatever a gateway left in its url (never download it)."""
    if isinstance(item, dict) and item.get("is_image_safe") is False:
        return {**item, "url": None}
    return item


def transport_error(error: requests.RequestException, url: str, timeout_s: float) -> ApiError:
    """Tell "never reached the server" (safe to resend) from "may have run" (resending may double-bill)."""
    if isinstance(error, _BAD_URL):
        return ApiRejected(f"the API address {url} is not usable: {reason_of(error)}", "fix api.base_url")
    reason = getattr(error.args[0], "reason", None) if error.args else None
    never_connected = isinstance(error, _NEVER_CONNECTED) or isinstance(reason, _NEVER_CONNECTED_REASONS)
    if never_connected:
        return ApiUnavailable(
            f"could not connect to {short_url(url)}: {reason_of(error)}",
            "check the network and api.base_url; nothing was sent, remixd tries again",
            sent=False,
        )
    if isinstance(error, requests.exceptions.Timeout):
        return ApiUnavailable(
            f"no answer from {short_url(url)} within {timeout_s:g} s; {UNKNOWN_OUTCOME}",
            "raise api.timeout_s if large requests need longer",
            sent=True,
        )
    return ApiUnavailable(
        f"the connection to {short_url(url)} broke after the request was sent ({reason_of(error)}); {UNKNOWN_OUTCOME}",
        "check the spend on Ideogram's dashboard before sending this input again",
        sent=True,
    )
