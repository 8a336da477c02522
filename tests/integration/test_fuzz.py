"""Property-based tests: whatever a config file holds, `load_config` answers with a valid
config or a ConfigError, and `remixd check` with exit status 2 and located messages; never a traceback.

Documents are built from the real keys (so the fuzzing reaches deep into every section) with values of every
YAML type, plus raw text and bytes. The sandbox's multipart and JSON parsing is fuzzed in
tests/test_sandbox.py (`test_fuzz_*`), so it is not repeated here.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remixd import cli
from remixd.config.load import load_config
from remixd.errors import ConfigError
from remixd.rules import compile_glob

API_KEYS = [
    "base_url",
    "auth",
    "api_key_env",
    "api_key_file",
    "sandbox",
    "max_in_flight_images",
    "timeout_s",
    "download_timeout_s",
    "max_download_bytes",
    "allowed_result_hosts",
]
INBOX_KEYS = [
    "path",
    "output",
    "done_dir",
    "failed_dir",
    "after",
    "recursive",
    "settle_s",
    "detect",
    "rules",
    "ignore",
    "rescan_s",
    "poll_s",
]
REQUEST_KEYS = [
    "prompt",
    "model",
    "aspect_ratio",
    "resolution",
    "image_weight",
    "magic_prompt_option",
    "seed",
    "style_type",
    "negative_prompt",
    "num_images",
    "color_palette",
    "rendering_speed",
    "style_codes",
    "style_preset",
]
TOP_KEYS = ["api", "state_dir", "budget", "defaults", "inboxes", "rules", "shutdown_grace_s"]
ALL_KEYS = (
    API_KEYS
    + INBOX_KEYS
    + REQUEST_KEYS
    + TOP_KEYS
    + ["name", "match", "continue", "max_usd_per_day", "max_images_per_day", "inboxs", "api_key"]
)

# Values real configs get wrong: enum spellings, paths that climb or vanish, placeholders, odd numbers.
INTERESTING = st.sampled_from(
    [
        "",
        " ",
        "./inbox",
        "./outbox",
        "./done",
        "./failed",
        "./state",
        ".",
        "..",
        "/",
        "~",
        "../..",
        "inbox/..",
        "a\x00b",
        "V_2",
        "V_3",
        "V_2_TURBO",
        "ASPECT_10_16",
        "16x9",
        "ASPECT_2_1",
        "1024x1024",
        "RESOLUTION_1024_1024",
        "AUTO",
        "ON",
        "OFF",
        "TURBO",
        "api-key",
        "bearer",
        "move",
        "delete",
        "keep",
        "auto",
        "poll",
        "native",
        "{stem}",
        "{nope}",
        "{",
        "}",
        "{{}}",
        "*.jpg",
        "**",
        "**/x/**",
        "[z-a]",
        "[!",
        "\\",
        "sub/",
        "/abs/*.png",
        "https://api.ideogram.ai",
        "http://127.0.0.1:9/x",
        "ftp://x",
        "https://u:p@h",
        "#FF0000",
        "poster",
        "Bad Name",
        "1e309",
        "NaN",
        "-0",
        "0x10",
        "1_000",
        "yes",
        "no",
        "on",
        "null",
        "~/inbox",
        "$HOME/inbox",
        "é" * 40,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | INTERESTING
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(ALL_KEYS) | st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def section(keys: list[str], values: st.SearchStrategy[Any] = VALUES) -> st.SearchStrategy[Any]:
    """A mapping of some of `keys` (and now and then an unknown one) to random values; sometimes not a mapping."""
    mapping = st.dictionaries(st.sampled_from([*keys, "unknown_key"]), values, max_size=len(keys) + 1)
    return mapping | VALUES


GOOD_INBOX = {"path": "./inbox", "output": "./outbox", "done_dir": "./done", "failed_dir": "./failed"}
GOOD_RULE: dict[str, Any] = {"name": "poster", "match": ["*.jpg"], "request": {"prompt": "a beach, {stem}"}}


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A config document near a valid one: each section either the good one, a mutation of it, or junk."""
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["api"] = draw(
            st.just({"sandbox": True})
            | st.builds(
                lambda extra: {"sandbox": True, **extra}, st.dictionaries(st.sampled_from(API_KEYS), VALUES, max_size=3)
            )
            | section(API_KEYS)
        )
    inbox = draw(
        st.builds(
            lambda extra: {**GOOD_INBOX, **extra},
            st.dictionaries(st.sampled_from(INBOX_KEYS), VALUES | INTERESTING, max_size=3),
        )
    )
    document["inboxes"] = draw(st.sampled_from([[inbox], [inbox, inbox], inbox, []]))
    request = draw(
        st.builds(
            lambda extra: {**GOOD_RULE["request"], **extra},
            st.dictionaries(st.sampled_from(REQUEST_KEYS), VALUES, max_size=4),
        )
    )
    rule = draw(
        st.builds(
            lambda extra: {**GOOD_RULE, "request": request, **extra},
            st.dictionaries(st.sampled_from(["name", "match", "continue", "request"]), VALUES, max_size=2),
        )
    )
    document["rules"] = draw(st.sampled_from([[rule], [rule, rule], rule]))
    for key in ("state_dir", "budget", "defaults", "shutdown_grace_s", "inboxs"):
        if draw(st.integers(0, 4)) == 0:
            document[key] = draw(section(REQUEST_KEYS) if key == "defaults" else VALUES)
    return document


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """One folder for every example (a function-scoped tmp_path would be shared across examples anyway)."""
    with tempfile.TemporaryDirectory(prefix="remixd-fuzz-") as name:
        yield Path(name)


def dump(document: Any) -> str:
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # e.g. a lone surrogate in a string
        return repr(document)


def check(path: Path) -> tuple[int, str]:
    """`remixd check -c PATH` in process: (exit status, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = structlog.get_config()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = cli.main(["check", "-c", str(path), "--log-format", "json"])
    finally:
        structlog.configure(**saved)
    return status, err.getvalue()


def assert_answered(path: Path) -> None:
    """load_config returns or raises ConfigError, and `check` agrees: 0, or 2 with every problem located."""
    try:
        load_config(path)
    except ConfigError as error:
        assert error.problems, "a ConfigError without problems"
        status, stderr = check(path)
        assert status == 2, stderr
        assert "Traceback" not in stderr
        problems = [line for line in stderr.splitlines() if not line.startswith(("remixd: ", "{"))]
        assert problems, stderr
        # Each problem names a file (the config, or a file it points at), and the config's own problems
        # their line: `remixd.yaml:14: rules[0].match[0]: …`.
        assert all(re.match(r"^[^\n]+?(:\d+)?: ", line) for line in problems), stderr
        located = [line for line in problems if line.startswith(f"{path}:")]
        assert any(re.match(rf"^{re.escape(str(path))}:\d+: ", line) for line in located) or not located, stderr
    else:
        assert check(path)[0] == 0


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(document=documents())
def test_config_documents_never_raise_anything_but_config_error(folder: Path, document: Any) -> None:
    path = folder / "remixd.yaml"
    path.write_text(dump(document), encoding="utf-8")
    assert_answered(path)


@FUZZ
@given(
    text=st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{}'\"#&*!|>%@`,?0.5~\\")), max_size=80)
    | st.binary(max_size=80).map(lambda data: data.decode("latin-1"))
)
@example(text="api: &a [*a]\n")
@example(text="rules: !!python/object/apply:os.system ['true']\n")
@example(text="a: " + "[" * 5000)
@example(text="\ufeffapi: {sandbox: true}\n")
def test_raw_text_never_raises_anything_but_config_error(folder: Path, text: str) -> None:
    path = folder / "raw.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError):
        load_config(path)
    status, stderr = check(path)
    assert status == 2 and "Traceback" not in stderr


GLOB_CHARS = st.sampled_from(list("*?[]!^-/\\.a0Z é{},"))


@FUZZ
@given(
    glob=st.text(alphabet=GLOB_CHARS, max_size=16),
    relpath=st.text(alphabet=st.sampled_from(list("a0/.é -")), max_size=24),
)
def test_a_rule_glob_compiles_or_is_refused_cleanly(glob: str, relpath: str) -> None:
    try:
        pattern = compile_glob(glob)
    except ValueError as error:
        assert str(error), glob
        return
    pattern.fullmatch(relpath)  # matching never raises either


@FUZZ
@given(glob=st.text(alphabet=GLOB_CHARS, min_size=1, max_size=16))
def test_a_rule_glob_in_a_config_is_accepted_or_located(folder: Path, glob: str) -> None:
    path = folder / "glob.yaml"
    path.write_text(
        dump({"api": {"sandbox": True}, "inboxes": [GOOD_INBOX], "rules": [{**GOOD_RULE, "match": ["*.png", glob]}]}),
        encoding="utf-8",
    )
    try:
        load_config(path)
    except ConfigError as error:
        assert [problem.key_path for problem in error.problems] == ["rules[0].match[1]"], error
        assert error.problems[0].line is not None
        status, stderr = check(path)
        assert status == 2 and re.search(
            rf"^{re.escape(str(path))}:\d+: rules\[0\]\.match\[1\]: ", stderr, re.MULTILINE
        ), stderr


def test_consecutive_double_stars_compile_like_one() -> None:
    assert compile_glob("**/**/**/**/x.jpg").pattern == compile_glob("**/x.jpg").pattern


@pytest.mark.parametrize("field", ["aspect_ratio", "resolution", "magic_prompt_option", "style_type"])
def test_an_empty_enum_field_is_answered_not_a_traceback(folder: Path, field: str) -> None:
    path = folder / f"null-{field}.yaml"
    path.write_text(
        dump(
            {
                "api": {"sandbox": True},
                "inboxes": [GOOD_INBOX],
                "rules": [{**GOOD_RULE, "request": {"prompt": "p", field: None}}],
            }
        ),
        encoding="utf-8",
    )
    assert_answered(path)


@pytest.mark.parametrize("glob", ["[[]", "x[a--z]"])
def test_a_bracket_class_compiles_without_a_warning(glob: str) -> None:
    compile_glob(glob)
