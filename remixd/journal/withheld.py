"""Inputs whose images Ideogram's safety check withheld (`is_image_safe` false): paid for, and nothing to see.

`remixd status` lists the inputs that got no image at all, `remixd once` counts the images withheld in its run
(README "Commands"). Only inputs with a withheld image are returned, so the list stays as short as they are rare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from remixd.journal.database import Database
from remixd.journal.schema import parse_moment, stamp

EARLIEST = -(2**63)  # before any time the journal holds

# Per input with a withheld image (found by the partial index of `jobs.withheld`), over its written jobs: the
# images answered and how many of them were withheld.
_WITHHELD = """SELECT i.inbox, i.relpath, group_concat(j.rule, ', ') AS rules, max(j.completed_at) AS at,
        sum(json_array_length(coalesce(j.response, unpacked(j.packed, 1)), '$.data')) AS images,
        sum(j.withheld) AS withheld
    FROM (SELECT DISTINCT input_id FROM jobs INDEXED BY jobs_withheld WHERE withheld > 0 AND completed_at >= ?1) w
    JOIN jobs j ON j.input_id = w.input_id JOIN inputs i ON i.id = w.input_id
    WHERE +j.state = 'written' AND coalesce(j.response, unpacked(j.packed, 1)) IS NOT NULL AND j.completed_at >= ?1
    GROUP BY i.id HAVING withheld > 0 ORDER BY at DESC, i.id DESC"""  # +state: by input, not by the state index


@dataclass(frozen=True)
class Withheld:
    """One input with at least one image withheld by the safety check."""

    inbox: str
    relpath: str
    rules: str
    images: int
    withheld: int
    at: datetime

    @property
    def all_withheld(self) -> bool:
        return self.withheld >= self.images


def find_withheld(db: Database, since: datetime | None) -> list[Withheld]:
    """Newest first; only jobs written at or after `since` (all of them when None)."""
    rows = db.read(_WITHHELD, (EARLIEST if since is None else stamp(since),))
    return [
        Withheld(row["inbox"], row["relpath"], row["rules"], row["images"], row["withheld"], parse_moment(row["at"]))
        for row in rows
    ]
