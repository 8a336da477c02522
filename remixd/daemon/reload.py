"""SIGHUP: the daemon takes a new config, or keeps the old one and says why (README, "Commands": `remixd run`).

A key fixed where the config points is read again before a key probe, without a reload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remixd.config.model import Config
from remixd.daemon.folders import check_folders
from remixd.daemon.pool import workers_for
from remixd.errors import ConfigError
from remixd.logs import get_logger

if TYPE_CHECKING:
    from remixd.daemon.service import Service

log = get_logger(__name__)


def reload(service: Service) -> None:
    from remixd.config.load import load_config

    service.notifier.reloading(round(service.clock.monotonic() * 1_000_000))
    try:
        new = load_config(service.config.source)
    except ConfigError as error:
        for problem in error.problems:
            log.error("remixd.reload.refused", problem=str(problem))
        log.error("remixd.reload.kept_old_config", hint="fix the config and send SIGHUP again")
    else:
        try:
            _reload_api(service, new)
        except ConfigError as error:
            for problem in error.problems:
                log.error("remixd.reload.refused", problem=str(problem))
            service.notifier.ready(service.views.status_line())
            return
        service.intake.stop()
        for inbox in new.inboxes:
            check_folders(inbox, new.source.parent)
        service.config = new
        service.limiter.set_maximum(new.api.max_in_flight_images)
        # A higher ceiling needs the workers to fill it; a lower one keeps its idle workers, the limiter
        # bounds what they send.
        missing = workers_for(new.api.max_in_flight_images) - service.pool.size
        if missing > 0:
            service.pool.start(missing, service.process, service.processed)
        service.gates.budget.reconfigure(new.budget)
        service.parts.space.min_free_mb = new.journal.min_free_mb  # the next housekeeping applies it
        if service.gates.budget_pause.is_paused:
            # The caps may have been raised: the next submission decides again (and pauses again if the
            # day's budget is still spent), instead of waiting for UTC midnight.
            service.gates.budget_pause.resume()
            log.warning("remixd.budget.resumed", reason="configuration reloaded")
        service.intake = service.parts.intake(new.inboxes)
        service.backlog.inboxes = new.inboxes
        service.intake.start(watch=service.mode == "run")
        log.info("remixd.reload.done", inboxes=len(new.inboxes), rules=len(new.rules))
    service.notifier.ready(service.views.status_line())


def reread_key(service: Service) -> None:
    """Before a key probe: a key that was fixed where the config says it is (a key file, the credential)
    is read again and used, without a reload (README "How remixd keeps files and money safe")."""
    connection = service.parts.connection
    if not connection.is_current(service.config.api):
        api = service.config.api
        service.client.swap(connection.build_client(service.config, service.parts.api_metrics), sandbox=api.sandbox)
        log.info("remixd.api.key_reread", hint="the key changed where the config points; trying it now")


def _reload_api(service: Service, new: Config) -> None:
    """A new key or API setting takes effect for the next request; a reload also lifts an auth pause
    (the operator fixed something; if not, the next 401 pauses again)."""
    connection = service.parts.connection
    if not connection.is_current(new.api):
        service.client.swap(connection.build_client(new, service.parts.api_metrics), sandbox=new.api.sandbox)
        log.info("remixd.reload.api_changed")
    if service.gates.auth.is_paused:
        service.gates.auth.resume()
        log.warning("remixd.api.resumed", reason="configuration reloaded")
    if new.metrics != service.config.metrics:
        log.warning("remixd.reload.metrics_unchanged", hint="metrics.listen takes effect at the next start")
