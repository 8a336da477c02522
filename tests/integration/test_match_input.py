"""`aspect_ratio: match_input`: each input gets the route's allowed ratio nearest to its own, as it is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from remixd.config.load import load_config
from remixd.daemon.plan import make_plan
from remixd.errors import ConfigError
from remixd.journal.sqlite import JOURNAL_NAME
from remixd.rules import nearest_ratio
from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, sidecars, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
MATCHING = {**POSTER, "request": {**POSTER["request"], "aspect_ratio": "match_input"}}


@pytest.mark.parametrize(
    ("size", "legacy", "v3"),
    [((300, 200), "ASPECT_3_2", "3x2"), ((200, 300), "ASPECT_2_3", "2x3"), ((100, 100), "ASPECT_1_1", "1x1"),
     ((1000, 560), "ASPECT_16_9", "16x9"), ((500, 400), "ASPECT_4_3", "5x4")],
)  # fmt: skip
def test_the_nearest_allowed_ratio(size: tuple[int, int], legacy: str, v3: str) -> None:
    from remixd.ideogram.enums import ASPECT_RATIOS_LEGACY, ASPECT_RATIOS_V3

    assert (nearest_ratio(size, ASPECT_RATIOS_LEGACY), nearest_ratio(size, ASPECT_RATIOS_V3)) == (legacy, v3)


def test_each_input_is_sent_with_its_own_ratio_exif_orientation_applied(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, rules=[MATCHING])
    make_image(tmp_path / "inbox/wide.jpg", size=(300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait: a phone held upright
    Image.new("RGB", (300, 200), (9, 9, 9)).save(tmp_path / "inbox/upright.jpg", exif=exif)

    loaded = load_config(config)
    planned = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())
    make_service(config, "once", ENV).run()

    assert {row.relpath: row.request for row in planned.rows} == {
        document["source"]["relpath"]: document["api"]["request"] for document in sidecars(tmp_path / "outbox")
    }  # the plan reads the orientation as the run does
    sent = {document["source"]["relpath"]: document["api"]["request"] for document in sidecars(tmp_path / "outbox")}
    assert (sent["wide.jpg"]["aspect_ratio"], sent["upright.jpg"]["aspect_ratio"]) == ("ASPECT_3_2", "ASPECT_2_3")


def test_match_input_with_a_resolution_is_refused_at_load(tmp_path: Path) -> None:
    both = {**POSTER, "request": {**MATCHING["request"], "resolution": "RESOLUTION_1024_1024"}}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, None, rules=[both]))
    assert any("match_input and resolution are both set" in str(problem) for problem in caught.value.problems)
