"""A job's fingerprint: what is sent and where."""

from __future__ import annotations

from remixd.work.destination import SANDBOX, destination, job_fingerprint

FINGERPRINT = "ab" * 32


def test_requests_to_ideogram_keep_the_fingerprint_journals_already_hold() -> None:
    assert job_fingerprint(FINGERPRINT, destination("https://api.ideogram.ai/", sandbox=False)) == FINGERPRINT


def test_the_sandbox_and_other_places_never_share_a_fingerprint_with_ideogram() -> None:
    found = {
        job_fingerprint(FINGERPRINT, destination("http://127.0.0.1:8787", sandbox=True)),
        job_fingerprint(FINGERPRINT, destination("http://127.0.0.1:9999", sandbox=True)),  # any port: the sandbox
        job_fingerprint(FINGERPRINT, destination("https://gw.example/ideogram", sandbox=False)),
        FINGERPRINT,
    }
    assert len(found) == 3
    assert destination("http://127.0.0.1:9999", sandbox=True) == SANDBOX
