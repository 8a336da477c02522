"""After an upgrade, before the daemon is restarted: the operator's commands leave the journal's schema alone.

The daemon of the older remixd may still be running the journal; brought up to date under it, it would go on
writing rows of its own layout into the new one (fingerprints whole where the new layout numbers them, so its
duplicate check would no longer find earlier results, and the new remixd could not read its jobs)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from remixd.config.load import load_config
from remixd.journal.schema import MIGRATIONS
from remixd.journal.sqlite import JOURNAL_NAME
from tests.helpers import make_image, old_journal, remixd, write_config


def versions(journal: Path) -> list[int]:
    with sqlite3.connect(journal) as db:
        found = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    db.close()
    return found


def test_status_retry_and_reroll_refuse_a_journal_of_an_older_remixd_and_the_daemon_brings_it_up_to_date(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, None)
    make_image(tmp_path / "inbox/mug.jpg")
    journal = load_config(config).state_dir / JOURNAL_NAME
    journal.parent.mkdir(parents=True)
    old_journal(journal, len(MIGRATIONS) - 1).close()  # as the remixd before this one left it

    for command in (("status",), ("retry",), ("reroll", "--yes", str(tmp_path / "inbox/mug.jpg"))):
        refused = remixd(*command, "-c", str(config))
        assert refused.returncode == 3, (command, refused.stdout)  # a journal error
        assert f"the journal {journal} is of an older remixd (schema {len(MIGRATIONS) - 1} of" in refused.stderr
        assert "restart the daemon (systemctl restart remixd, or remixd run)" in refused.stderr, refused.stderr
        assert versions(journal)[-1] == len(MIGRATIONS) - 1, command  # left as it was

    assert remixd("once", "-c", str(config)).returncode == 0  # the daemon's start brings it up to date
    assert versions(journal)[-1] == len(MIGRATIONS)
    status = remixd("status", "-c", str(config))
    assert status.returncode == 0, status.stderr
    assert "done 1" in status.stdout
