"""The sandbox's v2 surface: ``POST /v2/image/remix/{model}`` (sync, async and ``dry_run`` quotes) and
``GET /v2/generations/{id}``.

An async generation is pending for the sandbox's latency (the "generation time"), then completes (billed) or
fails (``fail_generation_next``; not billed). It completes on the sandbox clock whether or not anyone
polls: a client that crashed after submitting is billed all the same, as it would be at Ideogram. Its images are
made during that time, in the background from the moment it is accepted, as Ideogram makes them while the
generation runs: the poll that sees it completed answers at once and its download serves bytes already made
(rendering at the poll added a render to every slot's cycle that the real API does not have). Its images hold
their in-flight places until it ends. Polls are limited per organisation (``poll_limit`` per ``poll_window_s``),
answered 429 with Retry-After beyond that.

Order of checks for a remix: route -> auth -> 402 -> injected 429/5xx -> multipart -> validation (400/404)
-> quote (dry_run) -> safety (422) -> in-flight limit (429) -> generation.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import threading
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from remixd.clock import Clock
from remixd.logs import get_logger
from remixd.sandbox import reference_v2
from remixd.sandbox.generations import Generation, quote_reply, status_document
from remixd.sandbox.multipart import MultipartError, parse_multipart
from remixd.sandbox.replies import Action, Reply, also_then, json_reply
from remixd.sandbox.results import make_items, rule_of
from remixd.sandbox.state import PartInfo, RecordDraft
from remixd.sandbox.validation import BadRequest
from remixd.sandbox.validation_v2 import extract_v2, validate_v2

if TYPE_CHECKING:
    from remixd.sandbox.app import Sandbox

log = get_logger(__name__)
_SEED_SPACE = 2_147_483_648


@dataclass
class PollCounts:
    answered: int = 0
    limited: int = 0  # answered 429 by the poll-rate limit


class V2Api:
    def __init__(self, sandbox: Sandbox, clock: Clock) -> None:
        self._sandbox = sandbox
        self._clock = clock  # a request's duration in its log line, as the legacy routes time theirs
        self._lock = threading.Lock()
        self._generations: OrderedDict[str, Generation] = OrderedDict()
        self._polls: deque[float] = deque()
        self.poll_counts = PollCounts()
        self._ended_at: OrderedDict[str, float] = OrderedDict()  # image id -> when its generation ended

    # ------------------------------------------------------------------------------------- state

    def settle(self) -> None:
        """End every generation whose time has come (and that no hold keeps pending)."""
        sandbox = self._sandbox
        if not sandbox.released():
            return
        now = sandbox.now()
        with self._lock:
            due = [g for g in self._generations.values() if g.status == "pending" and g.ready_at <= now]
            for generation in due:
                self._finish(generation)

    def _finish(self, generation: Generation) -> None:
        sandbox, order = self._sandbox, generation.work.order
        try:
            if generation.fails:
                generation.status = "failed"
                return
            billed = reference_v2.AUTO_BILLED * sandbox.options.account_price_factor
            price = billed if generation.work.estimate else order.price_per_image
            generation.usage_usd = sandbox.accounts.charge(order.price_key, price, order.num_images)
            generation.status = "completed"
        finally:
            sandbox.inflight.release(order.num_images)

    def _start_render(self, generation: Generation) -> None:
        """Make the generation's images on a thread of their own while it runs, started once its submission
        is answered (a client killed between its request and its record must not find a wider window here than
        at Ideogram). One short thread per pending generation: as many as the in-flight limit allows. A poll
        that finds it completed before the thread began makes its images itself (`_images`)."""

        made = generation.made = threading.Event()

        def make() -> None:
            try:
                self._make(generation)
            finally:
                made.set()

        threading.Thread(target=make, daemon=True, name="remixd-sandbox-render").start()

    def _images(self, generation: Generation) -> list[dict[str, Any]]:
        """A completed generation's images: those made while it ran (waiting for them only when the
        generation time was shorter than their making), else made now (a sync request, or a failed render,
        which fails here again for the poll to answer)."""
        if generation.made is not None:
            generation.made.wait()
        return self._make(generation)

    def _make(self, generation: Generation) -> list[dict[str, Any]]:
        """Render and store the generation's images once; their links expire counting from its end."""
        with self._lock:
            if generation.data is not None:
                return generation.data
        sandbox, order = self._sandbox, generation.work.order
        items = make_items(
            sandbox,
            order,
            sandbox.faults(),
            generation.host,
            generation.seed,
            stored_at=generation.ready_at,
            rule=generation.rule,
        )
        data = [{key: value for key, value in item.items() if key != "style_type"} for item in items]
        with self._lock:
            if generation.data is None:
                generation.data = data
                for item in data:  # so a download can tell how long after the generation ended it came
                    image_id = str(item.get("url") or "").rpartition("/")[2].partition(".")[0]
                    if image_id:
                        self._ended_at[image_id] = generation.ready_at
                while len(self._ended_at) > sandbox.options.max_records:
                    self._ended_at.popitem(last=False)
            return generation.data

    def downloaded(self, image_id: str) -> None:
        """Log how long after its generation ended an image's download began (bench: completion to download)."""
        with self._lock:
            ended = self._ended_at.pop(image_id, None)
        if ended is not None:
            since_ms = round((self._sandbox.now() - ended) * 1000, 1)
            log.info("remixd.sandbox.generation.downloaded", image_id=image_id, since_completed_ms=since_ms)

    def pending(self) -> list[Generation]:
        with self._lock:
            return [g for g in self._generations.values() if g.status == "pending"]

    def reset(self) -> None:
        with self._lock:
            for generation in self._generations.values():
                if generation.status == "pending":
                    self._sandbox.inflight.release(generation.work.order.num_images)
            self._generations.clear()
            self._polls.clear()
            self.poll_counts = PollCounts()

    def _keep(self, generation: Generation) -> None:
        with self._lock:
            self._generations[generation.generation_id] = generation
            limit = self._sandbox.options.max_records
            while len(self._generations) > limit:
                oldest = next(iter(self._generations.values()))
                if oldest.status == "pending":
                    break  # never forget work that still holds in-flight places
                self._generations.popitem(last=False)

    # ------------------------------------------------------------------------------------- remix

    def remix(self, model: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Reply:
        draft = RecordDraft(path=path, header_names=tuple(sorted(headers)), arrived=self._sandbox.now())
        params = urllib.parse.parse_qs(query)
        draft.dry_run = params.get("dry_run", ["false"])[-1] == "true"
        started = self._clock.monotonic()
        reply = self._remix_steps(model, headers, body, draft)
        return self._sandbox.answered(draft, reply, started, dry_run=draft.dry_run)

    def _remix_steps(  # noqa: PLR0911 - one return per check, in the order the API applies them
        self, model: str, headers: Mapping[str, str], body: bytes, draft: RecordDraft
    ) -> Reply:
        sandbox = self._sandbox
        if model not in reference_v2.FIELDS:
            return json_reply(404, {"error": f"A referenced resource was not found: no model {model!r}."})
        draft.auth_scheme, draft.key_valid, auth_error = sandbox.authenticate(headers)
        if not draft.key_valid:
            return json_reply(401, {"message": auth_error})
        reason = sandbox.faults().payment_required
        if reason:
            message = "Insufficient credits or quota (sandbox fault)."
            return json_reply(402, {"error": message, "reject_reason": reason})
        if sandbox.take("rate_limit_next"):
            return sandbox.inflight_reply()
        if sandbox.take("fail_before_next"):
            status = sandbox.faults().fail_before_status
            return json_reply(status, {"error": "The endpoint is temporarily unavailable (sandbox fault)."})
        try:
            parts = parse_multipart(body, headers.get("content-type"))
            draft.parts = tuple(PartInfo(p.name, p.filename, p.content_type, len(p.data)) for p in parts)
            submission = extract_v2(parts)
            draft.fields = submission.fields
            draft.image = submission.parts.get("image", [None])[0]
            work = validate_v2(model, submission, sandbox.options)
        except MultipartError as error:
            return sandbox.bad_request(400, str(error))
        except BadRequest as error:
            return sandbox.bad_request(error.status, error.detail)
        draft.ignored_fields = work.ignored
        if draft.dry_run:
            return quote_reply(work)
        order = work.order
        token = sandbox.options.forbidden_token
        if token and token in order.prompt:
            return json_reply(422, {"error": "The prompt did not pass safety checks."})
        self.settle()
        if not sandbox.inflight.try_acquire(order.num_images, sandbox.options.inflight_limit):
            return sandbox.inflight_reply()
        seed = order.seed if order.seed is not None else secrets.randbelow(_SEED_SPACE)
        now = sandbox.now()
        generation = Generation(
            generation_id=secrets.token_urlsafe(16),
            created=now,
            ready_at=now + sandbox.latency(),
            work=work,
            seed=seed,
            host=headers.get("host"),
            rule=rule_of(headers),
            fails=work.is_async and sandbox.take("fail_generation_next"),
        )
        if work.is_async:
            self._keep(generation)
            ack = json_reply(200, {"generation_id": generation.generation_id, "seed": seed})
            # Its images are made once the answer is sent: a render thread started before it took the GIL and
            # held this answer ~7 ms, a window for a kill between request and record that Ideogram's own
            # answer does not have (tests/e2e/test_kill_v2.py reports the window).
            return ack if generation.fails else replace(ack, then=lambda: self._start_render(generation))
        return self._run_now(generation, draft)

    def _run_now(self, generation: Generation, draft: RecordDraft) -> Reply:
        """A synchronous request: the generation runs while the client waits."""
        sandbox = self._sandbox
        sandbox.wait_latency()
        with self._lock:
            self._finish(generation)
        self._keep(generation)
        draft.billed = generation.usage_usd or Decimal(0)
        if sandbox.take("fail_after_next"):
            return json_reply(500, {"error": "Internal server error (sandbox fault, after the work was billed)."})
        answer = {"generation_id": generation.generation_id, "seed": generation.seed, "data": self._images(generation)}
        action: Action = "reset" if sandbox.take("reset_after_next") else "send"
        return json_reply(200, answer, action=action)

    # ------------------------------------------------------------------------------------- polling

    def poll(self, generation_id: str, headers: Mapping[str, str]) -> Reply:
        sandbox = self._sandbox
        _, valid, auth_error = sandbox.authenticate(headers)
        if not valid:
            return json_reply(401, {"message": auth_error})
        wait = self._poll_slot()
        if wait is not None:
            return json_reply(429, {"error": "Too many requests."}, (("Retry-After", str(wait)),))
        if not re.fullmatch(reference_v2.GENERATION_ID_PATTERN, generation_id):
            return json_reply(400, {"error": "The generation ID is not a valid URL-safe base64 ID."})
        self.settle()
        with self._lock:
            generation = self._generations.get(generation_id)
        # Logged once the answer is on the wire, as a remix is: the poller waits for nothing but the answer.
        then = functools.partial(
            log.info, "remixd.sandbox.poll", generation_id=generation_id, status=generation and generation.status
        )
        if generation is None:
            return also_then(json_reply(404, {"error": "Generation not found."}), then)
        data = self._images(generation) if generation.status == "completed" else None
        with self._lock:
            return also_then(json_reply(200, status_document(generation, data)), then)

    def _poll_slot(self) -> int | None:
        """None when this poll may be answered; else the seconds to wait (the limit is per organisation)."""
        options, now = self._sandbox.options, self._sandbox.now()
        with self._lock:
            while self._polls and self._polls[0] <= now - options.poll_window_s:
                self._polls.popleft()
            if len(self._polls) >= options.poll_limit:
                self.poll_counts.limited += 1
                return max(1, math.ceil(self._polls[0] + options.poll_window_s - now))
            self._polls.append(now)
            self.poll_counts.answered += 1
            return None
