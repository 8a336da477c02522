"""What the running daemon shows: systemd's STATUS= line, status.json, the metrics snapshot and the review page.

Everything here reads the service's parts and never changes them; the service calls it from its housekeeping
and hands its callbacks to the metrics server and the review page.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from remixd.daemon.status import status_line, write_status
from remixd.journal.sqlite import JOURNAL_NAME

if TYPE_CHECKING:
    from remixd.daemon.metrics import Snapshot
    from remixd.daemon.service import Service
    from remixd.review.pages import Live
    from remixd.review.server import ReviewServer


class Views:
    def __init__(self, service: Service) -> None:
        self.service = service

    def start_ui(self) -> ReviewServer | None:
        """The review page (README, "The review page"): loaded only when `ui:` is configured."""
        service = self.service
        if service.config.ui is None:
            return None
        from remixd.config.credentials import read_ui_token
        from remixd.daemon.operator import retry_failed
        from remixd.review.server import ReviewServer

        ui = ReviewServer(
            service.config.ui,
            token=read_ui_token(service.config.ui),
            journal_path=service.config.state_dir / JOURNAL_NAME,
            config=lambda: service.config,
            live=self.live,
            retry=lambda input_id: retry_failed(service.config, input_ids=[input_id]).lines,
            reroll=self.reroll,
            clock=service.clock,
        )
        ui.start()
        return ui

    def reroll(self, input_id: int) -> list[str]:
        """The review page's Re-roll: `remixd reroll --new-seed --yes` for one done input."""
        from remixd.daemon.reroll import find_rerolls, send_rerolls

        config = self.service.config
        record = self.service.journal.get_input(input_id)
        if record.state != "done" or record.disposal not in ("moved", "kept"):
            return [f"{record.relpath} is not a done input in a done folder or its inbox: nothing was sent"]
        place = Path(record.inbox) / record.relpath if record.disposal == "kept" else Path(record.disposed_to or "")
        orders, problems = find_rerolls(config, [place])
        return problems + list(send_rerolls(config, orders))

    def live(self) -> Live:
        from remixd.review.pages import Live

        service = self.service
        return Live(service.pool.queued, service.limiter.in_flight, service.limiter.ceiling, tuple(self.paused()))

    def snapshot(self) -> Snapshot:
        from remixd.daemon.metrics import Snapshot

        service = self.service
        oldest = service.journal.oldest_claim()
        spent = service.gates.budget.spent_today()
        return Snapshot(
            discovered=dict(service.intake.counters.claimed),
            missed_by_events=service.intake.counters.missed_by_events,
            outcomes=dict(service.outcomes),
            queue_depth=service.pool.queued,
            oldest_pending_age_s=0.0 if oldest is None else (service.clock.utcnow() - oldest).total_seconds(),
            in_flight_images=service.limiter.in_flight,
            ceiling=service.limiter.ceiling,
            spend_usd_today=spent.usd,
            spend_images_today=spent.images,
            paused=int(bool(self.paused())),
            state_free_bytes=service.parts.space.free_bytes,
        )

    def paused(self) -> list[str]:
        """Why work waits: a rejected key, the day's budget, a nearly full state fs, then each missing inbox."""
        paused = [reason for reason in (pause.reason for pause in self.service.gates.pauses) if reason]
        return paused + self.service.intake.paused

    def status_line(self) -> str:
        service = self.service
        scanned = service.intake.progress.files if service.intake.scanning else None
        return status_line(
            len(service.config.inboxes), service.pool.queued, service.limiter.in_flight, self.paused(), scanned
        )

    def write_status(self, *, stopped: bool = False) -> None:
        service = self.service
        write_status(
            service.config.state_dir,
            running=not stopped,
            paused=self.paused(),
            inboxes=service.intake.modes,
            queued=service.pool.queued,
            in_flight_images=service.limiter.in_flight,
            ceiling=service.limiter.ceiling,
            missed_by_events=service.intake.counters.missed_by_events,
            updated_at=service.clock.wall(),
            scan=service.intake.progress.as_dict(),
            state_free_bytes=service.parts.space.free_bytes,
        )
