from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remixd import secrets
from remixd.config.credentials import ApiKey, find_api_key
from remixd.config.load import load_config
from remixd.config.model import ApiConfig, Config
from remixd.config.state_model import InboxSchema
from remixd.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

MINIMAL = """\
inboxes:
  - path: ./inbox
    output: ./outbox
    done_dir: ./done
    failed_dir: ./failed
rules:
  - name: poster
    match: ["*.jpg"]
    request:
      prompt: "A beach, {stem}"
"""


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(problem) for problem in caught.value.problems]


def one_problem(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


# --- good configs -----------------------------------------------------------------------------------------


def test_example_config_loads_cleanly() -> None:
    config = load_config(REPO / "config.example.yaml")
    assert config.api.sandbox is True
    assert config.warnings == ()
    inbox = config.inboxes[0]
    assert (inbox.path, inbox.output, inbox.done_dir, inbox.failed_dir) == (
        REPO / "inbox",
        REPO / "outbox",
        REPO / "done",
        REPO / "failed",
    )
    assert (inbox.settle_s, inbox.after, config.state_dir) == (2.0, "move", REPO / "state")
    assert inbox.settle_s == InboxSchema.model_fields["settle_s"].default  # README's documented default
    assert inbox.companion_wait_s == InboxSchema.model_fields["companion_wait_s"].default
    written = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))["inboxes"][0]
    # every key of an inbox is shown, with its comment (`outputs:` at the top level, which an inbox may override)
    assert set(written) == set(InboxSchema.model_fields) - {"outputs"}
    assert [rule.name for rule in config.rules_for(inbox)] == ["square", "poster"]
    assert {rule.request.model for rule in config.rules} == {"ideogram-3", "ideogram-4"}  # v2 routes


def test_minimal_config_gets_the_documented_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # relative paths follow the config file, not the working directory
    config = load_config(write(tmp_path, MINIMAL), env={"IDEOGRAM_API_KEY": "key-0001"})
    assert config.source == tmp_path / "config.yaml"
    assert config.api == ApiConfig()
    assert config.api.base_url == "https://api.ideogram.ai"
    assert (config.api.auth, config.api.api_key_env, config.api.max_in_flight_images) == (
        "api-key",
        "IDEOGRAM_API_KEY",
        8,
    )
    assert (config.state_dir, config.shutdown_grace_s) == (tmp_path / "state", 30.0)
    inbox = config.inboxes[0]
    assert inbox.path == tmp_path / "inbox"
    assert (inbox.after, inbox.recursive, inbox.settle_s, inbox.detect, inbox.rules) == (
        "move",
        False,
        2.0,
        "auto",
        ("poster",),
    )
    assert (inbox.ignore, inbox.excluded_dirs, inbox.rescan_s, inbox.poll_s) == ((), (), 60.0, 1.0)
    rule = config.rules[0]
    assert (rule.continue_, rule.match, rule.request.prompt) == (False, ("*.jpg",), "A beach, {stem}")
    assert rule.patterns[0].fullmatch("sub/X.JPG")
    assert config.warnings == ("budget: none set, so unattended runs may spend without limit; set max_usd_per_day",)


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    nested = tmp_path / "etc" / "remixd"
    nested.mkdir(parents=True)
    text = MINIMAL.replace("./inbox", "../../srv/in").replace("./failed", str(tmp_path / "abs-failed"))
    config = load_config(write(nested, text + "state_dir: ~/remixd-state\n"))
    assert config.inboxes[0].path == tmp_path / "srv" / "in"
    assert config.inboxes[0].failed_dir == tmp_path / "abs-failed"
    assert config.state_dir == Path("~/remixd-state").expanduser().resolve()


def test_defaults_are_merged_under_each_rule(tmp_path: Path) -> None:
    text = MINIMAL + textwrap.dedent("""\
      - name: wide
        match: ["*.png"]
        request:
          prompt: "wide {stem}"
          model: V_2_TURBO
          resolution: 1280x800
    defaults:
      model: V_1
      aspect_ratio: 16x9
      seed: 7
    """)
    config = load_config(write(tmp_path, text))
    poster, wide = config.rules
    assert poster.request.wire_fields() == {
        "prompt": "A beach, {stem}",
        "model": "V_1",
        "aspect_ratio": "ASPECT_16_9",
        "seed": 7,
    }
    # the rule's resolution replaces the default aspect_ratio instead of clashing with it
    assert wide.request.wire_fields() == {
        "prompt": "wide {stem}",
        "model": "V_2_TURBO",
        "resolution": "RESOLUTION_1280_800",
        "seed": 7,
    }


def test_inbox_rules_default_to_all_rules_in_file_order(tmp_path: Path) -> None:
    text = MINIMAL + '  - name: second\n    match: ["*"]\n    request: {prompt: x}\n'
    config = load_config(write(tmp_path, text))
    assert config.inboxes[0].rules == ("poster", "second")
    assert [rule.name for rule in config.rules_for(config.inboxes[0])] == ["poster", "second"]


def test_own_folders_inside_an_inbox_are_excluded_from_watching(tmp_path: Path) -> None:
    text = MINIMAL.replace("./outbox", "./inbox/results").replace("./failed", "./inbox/.failed")
    config = load_config(write(tmp_path, text + "state_dir: ./inbox/state\n"))
    assert config.inboxes[0].excluded_dirs == (
        tmp_path / "inbox" / "state",
        tmp_path / "inbox" / "results",
        tmp_path / "inbox" / ".failed",
    )


def test_extension_keys_are_accepted(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "    failed_dir: ./failed\n",
        "    failed_dir: ./failed\n    recursive: true\n    ignore: ['*.xmp']\n    rescan_s: 5\n    poll_s: 0.5\n",
    )
    text += (
        "api:\n  base_url: http://127.0.0.1:8080/ideogram/\n  auth: bearer\n  download_timeout_s: 5\n"
        "  max_download_bytes: 1000\n  allowed_result_hosts: [ideogram.ai]\n  max_in_flight_images: 64\n"
        "shutdown_grace_s: 2\nbudget: {max_images_per_day: 10, max_usd_per_day: 1}\njournal: {keep_days: 30}\n"
    )
    config = load_config(write(tmp_path, text), env={"IDEOGRAM_API_KEY": "key-0001"})
    assert config.journal.keep_days == 30
    assert config.api.base_url == "http://127.0.0.1:8080/ideogram"
    assert (config.api.auth, config.api.max_download_bytes, config.api.allowed_result_hosts) == (
        "bearer",
        1000,
        ("ideogram.ai",),
    )
    assert (config.inboxes[0].recursive, config.inboxes[0].ignore, config.inboxes[0].rescan_s) == (
        True,
        ("*.xmp",),
        5.0,
    )
    assert (config.budget.max_images_per_day, config.budget.max_usd_per_day, config.shutdown_grace_s) == (
        10,
        1.0,
        2.0,
    )
    assert config.warnings == ()


# --- located problems -------------------------------------------------------------------------------------


def test_a_bad_aspect_ratio_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "      model: V_2\n      aspect_ratio: ASPECT_2_1\n")
    assert one_problem(path) == (
        f"{path}:12: rules[0].request.aspect_ratio: 'ASPECT_2_1' is not an aspect ratio of model V_2 "
        "(legacy /remix) (only V_3, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto have it) — "
        "use one of ASPECT_10_16, ASPECT_16_10, ASPECT_9_16, "
        "ASPECT_16_9, ASPECT_3_2, ASPECT_2_3, ASPECT_4_3, ASPECT_3_4, ASPECT_1_1, ASPECT_1_3, ASPECT_3_1"
    )


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        api:
          timeout_s: 0
          max_in_flight_images: 65
        inboxes:
          - path: ./inbox
            output: ./outbox
            failed_dir: ./failed
            settle_s: -1
        rules:
          - name: Poster
            match: ["*.jpg"]
            request:
              prompt: "{stm}"
              seed: -1
              style_type: RENDER_3D
              model: V_3
        """,
    )
    found = problems(path)
    assert [line.split(": ", 2)[0:2] for line in found] == [
        [f"{path}:2", "api.timeout_s"],
        [f"{path}:3", "api.max_in_flight_images"],
        [f"{path}:5", "inboxes[0].after"],
        [f"{path}:8", "inboxes[0].settle_s"],
        [f"{path}:10", "rules[0].name"],
        [f"{path}:13", "rules[0].request.prompt"],
        [f"{path}:14", "rules[0].request.seed"],
        [f"{path}:15", "rules[0].request.style_type"],
    ]
    assert (
        found[0] == f"{path}:2: api.timeout_s: input should be greater than 0 (got 0) — write a number greater than 0"
    )
    assert found[1] == (
        f"{path}:3: api.max_in_flight_images: input should be less than or equal to 64 (got 65)"
        " — write a number at most 64"
    )
    assert found[2] == (
        f"{path}:5: inboxes[0].after: after: move needs done_dir — add done_dir: ./done, "
        "or set after: keep or after: delete"
    )
    assert found[4] == (
        f"{path}:10: rules[0].name: string should match pattern '^[a-z0-9_-]+$' (got 'Poster')"
        " — use lower-case letters, digits, '-' and '_', e.g. 'poster'"
    )


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        ("inboxs: []\n", 11, "inboxs: unknown key 'inboxs' — did you mean 'inboxes'?"),
        ("api:\n  timeout: 3\n", 12, "api.timeout: unknown key 'timeout' — did you mean 'timeout_s'?"),
        (
            "api:\n  api_key: abcd\n",
            12,
            "api.api_key: unknown key 'api_key' — did you mean 'api_key_env' or 'api_key_file' (under api:)? "
            "never put an API key in a config file: name a file (api_key_file) or a variable (api_key_env)",
        ),
        (
            "api_key: abcd\n",
            11,
            "api_key: unknown key 'api_key' — did you mean 'api_key_env' or 'api_key_file' (under api:)? "
            "never put an API key in a config file: name a file (api_key_file) or a variable (api_key_env)",
        ),
        ("      negative_promt: x\n", 11, "rules[0].request.negative_promt: unknown key 'negative_promt' — "
         "did you mean 'negative_prompt'?"),
    ],
)  # fmt: skip
def test_unknown_keys_get_did_you_mean(tmp_path: Path, extra: str, line: int, expected: str) -> None:
    path = write(tmp_path, MINIMAL + extra)
    assert one_problem(path) == f"{path}:{line}: {expected}"


def test_a_key_value_never_appears_in_messages(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "api:\n  api_key: sk-very-secret-value\n")
    assert "sk-very-secret-value" not in "\n".join(problems(path))


def test_inbox_key_typo_and_unknown_rule_name(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    failed_dir: ./failed\n", "    faild_dir: ./f\n    rules: [postr]\n"))
    assert problems(path) == [
        f"{path}:2: inboxes[0].failed_dir: required key 'failed_dir' is missing — add failed_dir: …",
        f"{path}:5: inboxes[0].faild_dir: unknown key 'faild_dir' — did you mean 'failed_dir'?",
        f"{path}:6: inboxes[0].rules[0]: no rule is named 'postr' — did you mean 'poster'?",
    ]


def test_a_bad_default_is_reported_at_the_defaults_line_naming_the_rule(tmp_path: Path) -> None:
    text = (
        MINIMAL + '      model: V_2A\n  - name: fast\n    match: ["*"]\n    request: {prompt: x, model: V_2A_TURBO}\n'
    )
    path = write(tmp_path, text + "defaults:\n  model: V_2\n  negative_prompt: blurry\n")
    fix = (
        "remove negative_prompt, or use a model that takes it: V_1, V_1_TURBO, V_2, V_2_TURBO, V_3, ideogram-3, "
        "ideogram-3-character, ideogram-3-custom-model, auto"
    )
    assert problems(path) == [  # one per rule: the message names each rule's model
        f"{path}:17: defaults.negative_prompt: negative_prompt is not available for model V_2A "
        f"(in rule 'poster') — {fix}",
        f"{path}:17: defaults.negative_prompt: negative_prompt is not available for model V_2A_TURBO "
        f"(in rule 'fast') — {fix}",
    ]


def test_the_same_bad_default_for_several_rules_is_one_problem(tmp_path: Path) -> None:
    text = MINIMAL + '  - name: other\n    match: ["*"]\n    request: {prompt: x}\n'
    path = write(tmp_path, text + "defaults:\n  seed: -5\n")
    assert one_problem(path) == (
        f"{path}:15: defaults.seed: input should be greater than or equal to 0 (got -5) (in rules 'poster', 'other')"
        " — write a number at least 0"
    )


def test_a_model_specific_error_is_at_the_rules_line_when_the_rule_wrote_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "      rendering_speed: TURBO\ndefaults:\n  model: V_2\n")
    assert one_problem(path) == (
        f"{path}:11: rules[0].request.rendering_speed: rendering_speed is not available for model V_2 — "
        "remove rendering_speed, or use a model that takes it: V_3, ideogram-4, ideogram-3, ideogram-3-character, "
        "ideogram-3-custom-model"
    )


def test_magic_prompt_errors_point_at_the_spelling_used(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "      magic_prompt: MAYBE\n")
    assert one_problem(path).startswith(f"{path}:11: rules[0].request.magic_prompt: 'MAYBE' is not a magic")


def test_missing_prompt_points_at_the_request(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('      prompt: "A beach, {stem}"\n', "      seed: 1\n"))
    assert one_problem(path) == (f"{path}:9: rules[0].request.prompt: required key 'prompt' is missing — add prompt: …")


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("{stm}", "unknown placeholder '{stm}' — did you mean '{stem}'?"),
        ("{stem", "the prompt template is malformed"),
        ("{name!z}", "the prompt template cannot be rendered"),
    ],
)
def test_placeholder_errors(tmp_path: Path, prompt: str, message: str) -> None:
    path = write(tmp_path, MINIMAL.replace('"A beach, {stem}"', f'"{prompt}"'))
    assert one_problem(path).startswith(f"{path}:10: rules[0].request.prompt: {message}")


def test_escaped_braces_are_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL.replace('"A beach, {stem}"', '"{{json}} {stem} {rule}"')))
    assert config.rules[0].request.prompt == "{{json}} {stem} {rule}"


def test_rule_names_are_unique(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '  - name: poster\n    match: ["*"]\n    request: {prompt: x}\n')
    assert one_problem(path) == (
        f"{path}:11: rules[1].name: rule name 'poster' is already used at line 7 — give every rule its own name"
    )


def test_bad_globs_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('["*.jpg"]', '["*.jpg", "photos/"]'))
    assert one_problem(path).startswith(
        f"{path}:8: rules[0].match[1]: 'photos/' names a folder, but rules match files; write 'photos/**'"
    )


def test_empty_rule_list_in_an_inbox(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    failed_dir: ./failed\n", "    failed_dir: ./failed\n    rules: []\n"))
    assert one_problem(path).startswith(f"{path}:6: inboxes[0].rules: an empty list means no rule ever applies")


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("    output: ./outbox\n", "    output: ./inbox\n",
         "3: inboxes[0].output: the output folder is the folder of inboxes[0] itself: remixd would process "
         "its own files"),
        ("    done_dir: ./done\n", "    done_dir: .\n",
         "4: inboxes[0].done_dir: the done folder {tmp} contains the inbox inboxes[0] ({tmp}/inbox)"),
        ("    failed_dir: ./failed\n", "    failed_dir: inbox/\n",
         "5: inboxes[0].failed_dir: the failed folder is the folder of inboxes[0] itself"),
    ],
)  # fmt: skip
def test_folders_must_not_feed_back(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL.replace(replace, by))
    assert one_problem(path).startswith(f"{path}:" + expected.format(tmp=tmp_path))


def test_state_dir_must_not_be_an_inbox(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "state_dir: inbox\n")
    assert one_problem(path).startswith(f"{path}:11: state_dir: the state folder is the folder of inboxes[0] itself")


def test_two_inboxes_on_one_folder(tmp_path: Path) -> None:
    second = "  - path: ./inbox/\n    output: ./out2\n    after: keep\n    failed_dir: ./failed2\n"
    path = write(tmp_path, MINIMAL.replace("rules:\n", second + "rules:\n", 1))
    assert one_problem(path) == (
        f"{path}:6: inboxes[1].path: inboxes[0] already watches {tmp_path}/inbox — merge the two inboxes"
    )


def test_an_inbox_inside_a_recursive_inbox(tmp_path: Path) -> None:
    second = "  - path: ./inbox/sub\n    output: ./out2\n    after: keep\n    failed_dir: ./failed2\n"
    text = MINIMAL.replace("    failed_dir: ./failed\n", "    failed_dir: ./failed\n    recursive: true\n")
    path = write(tmp_path, text.replace("rules:\n", second + "rules:\n", 1))
    assert "inboxes[1].path: this inbox and inboxes[0] overlap and one is recursive" in one_problem(path)


def test_a_folder_beside_a_non_recursive_inbox_is_fine(tmp_path: Path) -> None:
    second = "  - path: ./inbox/sub\n    output: ./out2\n    after: keep\n    failed_dir: ./failed2\n"
    config = load_config(write(tmp_path, MINIMAL.replace("rules:\n", second + "rules:\n", 1)))
    assert [inbox.path for inbox in config.inboxes] == [tmp_path / "inbox", tmp_path / "inbox" / "sub"]


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("api:\n  max_in_flight_images: 0\n", 12, "api.max_in_flight_images", "greater than or equal to 1"),
        ("api:\n  max_in_flight_images: true\n", 12, "api.max_in_flight_images", "valid integer"),
        ("api:\n  max_in_flight_images: 8.0\n", 12, "api.max_in_flight_images", "valid integer"),
        ("api:\n  timeout_s: -1\n", 12, "api.timeout_s", "greater than 0"),
        ("api:\n  sandbox: 'yes'\n", 12, "api.sandbox", "valid boolean"),
        ("api:\n  auth: token\n", 12, "api.auth", "input should be 'api-key' or 'bearer'"),
        ("api:\n  base_url: api.ideogram.ai\n", 12, "api.base_url", "base_url must be an http(s) URL"),
        ("api:\n  api_key_env: MY KEY\n", 12, "api.api_key_env", "string should match pattern"),
        ("budget:\n  max_usd_per_day: -1\n", 12, "budget.max_usd_per_day", "greater than or equal to 0"),
        ("shutdown_grace_s: 0\n", 11, "shutdown_grace_s", "greater than 0"),
        ("journal:\n  keep_days: 0\n", 12, "journal.keep_days", "greater than or equal to 1"),
        ("journal: postgresql://db/remixd\n", 11, "journal", "valid dictionary"),
        ("state_dir: 5\n", 11, "state_dir", "valid string"),
        ("api: [1]\n", 11, "api", "valid dictionary"),
    ],
)
def test_value_checks(tmp_path: Path, text: str, line: int, key: str, message: str) -> None:
    path = write(tmp_path, MINIMAL + text)
    found = one_problem(path)
    assert found.startswith(f"{path}:{line}: {key}: ")
    assert message in found


@pytest.mark.parametrize(("value", "ok"), [("0", False), ("0.01", True), ("1", True)])
def test_settle_s_must_be_positive(tmp_path: Path, value: str, ok: bool) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace("    failed_dir: ./failed\n", f"    failed_dir: ./failed\n    settle_s: {value}\n"),
    )
    if ok:
        assert load_config(path).inboxes[0].settle_s == float(value)
    else:
        assert one_problem(path).startswith(f"{path}:6: inboxes[0].settle_s: input should be greater than 0")


def test_after_move_needs_done_dir_but_keep_does_not(tmp_path: Path) -> None:
    without = MINIMAL.replace("    done_dir: ./done\n", "")
    assert "after: move needs done_dir" in one_problem(write(tmp_path, without))
    config = load_config(write(tmp_path, without.replace("    failed_dir", "    after: keep\n    failed_dir")))
    assert config.inboxes[0].done_dir is None


# --- documents that are not a config at all: never a traceback --------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "{path}:1: the file is empty — start from config.example.yaml"),
        ("# only a comment\n", "{path}:1: the file is empty — start from config.example.yaml"),
        ("- a\n- b\n", "{path}:1: the top level must be a mapping of keys (got a list)"),
        ("just text\n", "{path}:1: the top level must be a mapping of keys (got a str)"),
        ("a: [1, 2\nb: 3\n", "{path}:2: YAML syntax error: while parsing a flow sequence"),
        ("a: 1\n\tb: 2\n", "{path}:2: YAML syntax error"),
        ("a: 1\n---\nb: 2\n", "{path}:2: YAML syntax error"),
        ("a: !!python/name:os.system x\n", "{path}:1: a: cannot read this value"),
    ],
)
def test_broken_documents(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    found = problems(path)
    assert found[0].startswith(expected.format(path=path))


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "rules: []\n")
    assert one_problem(path) == (
        f"{path}:11: rules: duplicate key (first at line 6) — keep one; YAML would silently use the last"
    )


def test_merge_keys_and_self_referencing_aliases(tmp_path: Path) -> None:
    assert "merge (<<)" in problems(write(tmp_path, MINIMAL + "defaults:\n  <<: {model: V_2}\n"))[0]
    assert "a YAML alias refers to itself" in problems(write(tmp_path, MINIMAL + "defaults: &a\n  x: *a\n"))[0]


def test_missing_file_folder_and_bad_encoding(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems(missing) == [f"{missing}: no such file: {missing} — create it (see config.example.yaml) or pass -c"]
    assert problems(tmp_path) == [f"{tmp_path}: {tmp_path} is a folder — pass the config file itself with -c PATH"]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: 1\nb: caf\xe9\n")
    assert problems(latin) == [f"{latin}:2: the file is not UTF-8 text — save it as UTF-8"]


def test_a_path_through_a_file_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    path = tmp_path / "file" / "config.yaml"
    assert problems(path) == [f"{path}: {path} cannot be read (Not a directory) — check its permissions"]


def test_unknown_default_key_is_reported_once_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "defaults:\n  aspect: 16x9\n")
    assert one_problem(path) == (
        f"{path}:12: defaults.aspect: unknown key 'aspect' (in rule 'poster') — did you mean 'aspect_ratio'?"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    path.chmod(0)
    assert problems(path) == [f"{path}: {path} cannot be read (Permission denied) — check its permissions"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.lists(st.sampled_from([*"ab:-[]{}&*!|>'\"#\n\t ,?%@`", "inboxes", "rules", "api", "  "])).map("".join))
def test_no_document_gives_a_traceback(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text, "fuzz.yaml")
    try:
        load_config(path)
    except ConfigError as error:
        assert error.problems
        assert all(problem.file == str(path) for problem in error.problems)


# --- the API key ------------------------------------------------------------------------------------------


def test_key_from_the_environment_is_stripped_and_registered() -> None:
    key = find_api_key(ApiConfig(api_key_env="MY_KEY"), {"MY_KEY": "  env-key-0001\n"}).value
    assert key == "env-key-0001"
    assert secrets.scrub("sent env-key-0001") == f"sent {secrets.REDACTED}"
    assert find_api_key(ApiConfig(), {}).value is None
    assert find_api_key(ApiConfig(), {"IDEOGRAM_API_KEY": "  "}).value is None


def test_key_file_wins_then_credentials_directory_then_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-0002\n", encoding="utf-8")
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "ideogram-api-key").write_text("cred-key-0003", encoding="utf-8")
    env = {"IDEOGRAM_API_KEY": "env-key-0004", "CREDENTIALS_DIRECTORY": str(credentials)}
    assert find_api_key(ApiConfig(api_key_file=key_file), env) == ApiKey("file-key-0002", str(key_file))
    assert find_api_key(ApiConfig(), env) == ApiKey(
        "cred-key-0003", "$CREDENTIALS_DIRECTORY/ideogram-api-key (systemd LoadCredential=)"
    )
    (credentials / "ideogram-api-key").unlink()
    assert find_api_key(ApiConfig(), env) == ApiKey("env-key-0004", "$IDEOGRAM_API_KEY")
    assert "env-key-0004" not in repr(find_api_key(ApiConfig(), env))


def test_unreadable_or_empty_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_api_key(ApiConfig(api_key_file=tmp_path / "missing"), {})
    assert str(caught.value.problems[0]).startswith(
        f"{tmp_path}/missing: api.api_key_file: the key file cannot be read (No such file or directory)"
    )
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="the key file is empty"):
        find_api_key(ApiConfig(api_key_file=tmp_path / "empty"), {})


def test_key_file_path_is_resolved_and_loose_modes_warned(tmp_path: Path) -> None:
    key_file = tmp_path / "secret" / "key"
    key_file.parent.mkdir()
    key_file.write_text("file-key-0005", encoding="utf-8")
    key_file.chmod(0o644)
    text = MINIMAL + "api:\n  api_key_file: secret/key\nbudget: {max_usd_per_day: 5}\n"
    config = load_config(write(tmp_path, text))
    assert config.api.api_key_file == key_file
    assert config.warnings == (f"api.api_key_file: {key_file} is readable by others; run chmod 600 {key_file}",)
    key_file.chmod(0o600)
    assert load_config(write(tmp_path, text)).warnings == ()
    assert find_api_key(config.api, {}).value == "file-key-0005"


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        config.inboxes[0].path = tmp_path  # type: ignore[misc]  # the point of the test
    assert isinstance(config, Config)


def test_an_inbox_rules_key_that_is_not_a_list_is_a_located_problem_not_a_crash(tmp_path: Path) -> None:
    # Found by tests/integration/test_fuzz.py: `rules: true` reached the output-name check as the rule names.
    text = MINIMAL.replace("    failed_dir: ./failed\n", "    failed_dir: ./failed\n    rules: true\n")
    assert ".yaml:6: inboxes[0].rules: " in one_problem(write(tmp_path, text))
