from __future__ import annotations

from typing import Any

import pytest

from remixd.config.model import Rule
from remixd.errors import InputError
from remixd.ideogram.requests import RemixRequest
from remixd.rules import (
    PLACEHOLDERS,
    compile_glob,
    match,
    placeholder_values,
    plan,
    render_prompt,
    template_problems,
)


def make_rule(name: str, globs: tuple[str, ...], *, continue_: bool = False, **request: Any) -> Rule:
    fields = {"prompt": "{stem} as a poster", **request}
    return Rule(
        name=name,
        match=globs,
        continue_=continue_,
        request=RemixRequest.model_validate(fields),
        patterns=tuple(compile_glob(glob) for glob in globs),
    )


GLOB_TABLE = [
    # pattern, relative path, matches
    ("*.jpg", "a.jpg", True),
    ("*.jpg", "IMG_0001.JPG", True),  # case-insensitive
    ("*.jpg", "sub/a.jpg", True),  # no '/': the file name, at any depth
    ("*.jpg", "x/y/z/a.Jpg", True),
    ("*.jpg", "a.jpeg", False),
    ("*.jpg", "a.jpg.part", False),
    ("a.jpg", "sub/a.jpg", True),
    ("/a.jpg", "a.jpg", True),  # a leading '/' anchors at the inbox root
    ("/a.jpg", "sub/a.jpg", False),
    ("sub/*.jpg", "sub/a.jpg", True),
    ("sub/*.jpg", "SUB/A.JPG", True),
    ("sub/*.jpg", "a.jpg", False),
    ("sub/*.jpg", "sub/x/a.jpg", False),  # '*' does not cross '/'
    ("sub/*.jpg", "other/sub/a.jpg", False),  # with a '/', the whole path
    ("sub/**/*.png", "sub/a.png", True),  # '**/' may match no folder
    ("sub/**/*.png", "sub/x/y/a.png", True),
    ("sub/**/*.png", "a.png", False),
    ("sub/**", "sub/a.png", True),
    ("sub/**", "sub/x/y", True),
    ("sub/**", "sub", False),
    ("**/*.png", "a.png", True),
    ("**/*.png", "x/y/a.png", True),
    ("**", "anything/at/all.bin", True),
    ("photo?.[jp]*", "photo1.jpg", True),
    ("photo?.[jp]*", "photo2.png", True),
    ("photo?.[jp]*", "photo10.jpg", False),
    ("photo?.[jp]*", "photo1.gif", False),
    ("?", "a", True),
    ("a?b", "a/b", False),  # '?' does not cross '/'
    ("[!a]*.jpg", "b.jpg", True),
    ("[!a]*.jpg", "a.jpg", False),
    ("[^a]*.jpg", "a.jpg", False),
    ("[a-c]x", "bx", True),
    ("[]]x", "]x", True),
    ("[x", "[x", True),  # an unclosed '[' is literal
    ("a**b", "a/b", False),  # '**' inside a name is just '*'
    ("a**b", "axxb", True),
    ("\\*.jpg", "*.jpg", True),
    ("\\*.jpg", "a.jpg", False),
    ("a+b (1).jpg", "a+b (1).jpg", True),  # regex metacharacters are literal
    ("./sub/*.jpg", "sub/a.jpg", True),
]


@pytest.mark.parametrize(("pattern", "relpath", "expected"), GLOB_TABLE)
def test_glob_semantics(pattern: str, relpath: str, expected: bool) -> None:
    assert (compile_glob(pattern).fullmatch(relpath) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "the pattern is empty"),
        ("/", "the pattern is empty"),
        ("photos/", "'photos/' names a folder, but rules match files; write 'photos/**' for its contents"),
        ("a//b", "has an empty, '.' or '..' part"),
        ("../x.jpg", "has an empty, '.' or '..' part"),
        ("[z-a].jpg", "is not a valid glob"),
        ("a\\", "ends a part with"),
    ],
)
def test_bad_globs_say_why(pattern: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        compile_glob(pattern)
    assert message in str(caught.value)


def test_first_match_wins() -> None:
    rules = [make_rule("a", ("*.jpg",)), make_rule("b", ("*.jpg",)), make_rule("c", ("*",))]
    assert [rule.name for rule in match("x.jpg", rules)] == ["a"]
    assert [rule.name for rule in match("x.png", rules)] == ["c"]
    assert match("x.png", rules[:2]) == []


def test_continue_chains_until_a_match_without_continue() -> None:
    rules = [
        make_rule("a", ("*.jpg",), continue_=True),
        make_rule("skipped", ("*.png",)),  # does not match: does not end the chain
        make_rule("b", ("*",), continue_=True),
        make_rule("c", ("*.jpg",)),
        make_rule("d", ("*",)),
    ]
    assert [rule.name for rule in match("x.jpg", rules)] == ["a", "b", "c"]
    assert [rule.name for rule in match("x.gif", rules)] == ["b", "d"]


def test_continue_on_the_last_match_just_ends() -> None:
    rules = [make_rule("a", ("*.jpg",)), make_rule("b", ("*.jpg",), continue_=True)]
    assert [rule.name for rule in match("x.jpg", rules[1:])] == ["b"]


def test_any_of_several_globs_matches() -> None:
    rule = make_rule("photos", ("*.jpg", "raw/**"))
    assert match("raw/x/y.cr2", [rule]) == [rule]
    assert match("y.cr2", [rule]) == []


def test_placeholder_values() -> None:
    assert placeholder_values("sub/My photo.v2.JPG", "poster") == {
        "stem": "My photo.v2",
        "name": "My photo.v2.JPG",
        "ext": "JPG",
        "parent": "sub",
        "relpath": "sub/My photo.v2.JPG",
        "rule": "poster",
        "caption": "",
        "text": "",
    }
    assert placeholder_values("a.jpg", "r", "A red mug")["caption"] == "A red mug"
    top = placeholder_values("a.png", "r")
    assert (top["parent"], top["stem"], top["ext"]) == ("", "a", "png")
    assert placeholder_values("x/y/README", "r")["ext"] == ""
    assert placeholder_values("x/y/README", "r")["parent"] == "x/y"


def test_a_companion_text_fills_text_or_is_the_whole_prompt_as_written() -> None:
    assert render_prompt("A poster of {text}", "a.jpg", "r", text="a {red} mug") == "A poster of a {red} mug"
    assert render_prompt("A poster of {stem}", "a.jpg", "r", text="a {red} mug") == "a {red} mug"
    assert render_prompt("A poster of {stem}", "a.jpg", "r") == "A poster of a"  # no companion: the rule's
    assert set(placeholder_values("a", "r")) == set(PLACEHOLDERS)


def test_render_prompt_with_escaped_braces() -> None:
    template = "{{literal}} {stem} from {parent}/{name} by {rule}"
    assert render_prompt(template, "trip/beach.jpg", "poster") == "{literal} beach from trip/beach.jpg by poster"


def test_plan_renders_prompts_and_fingerprints() -> None:
    rules = [
        make_rule("poster", ("*.jpg",), continue_=True, model="V_2", aspect_ratio="ASPECT_10_16"),
        make_rule("square", ("*.jpg",), model="V_3", aspect_ratio="1x1"),
    ]
    jobs = plan("sub/My photo.v2.JPG", rules)
    assert [job.rule for job in jobs] == ["poster", "square"]
    assert [job.request.prompt for job in jobs] == ["My photo.v2 as a poster"] * 2
    assert jobs[0].request.wire_fields() == {
        "prompt": "My photo.v2 as a poster",
        "model": "V_2",
        "aspect_ratio": "ASPECT_10_16",
    }
    assert all(job.fingerprint == job.request.fingerprint() for job in jobs)
    assert jobs[0].fingerprint != jobs[1].fingerprint
    other = plan("sub/Another.jpg", rules)
    assert other[0].fingerprint != jobs[0].fingerprint  # the rendered prompt differs
    assert plan("x.gif", rules) == []


def test_plan_refuses_a_prompt_that_renders_empty() -> None:
    rule = Rule(
        name="bare",
        match=("*",),
        continue_=False,
        request=RemixRequest.model_validate({"prompt": "{parent}"}),
        patterns=(compile_glob("*"),),
    )
    assert plan("sub/a.jpg", [rule])[0].request.prompt == "sub"
    with pytest.raises(InputError, match=r"rule 'bare' gives an empty prompt for 'a\.jpg'"):
        plan("a.jpg", [rule])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{stm}", "unknown placeholder '{stm}'"),
        ("{Stem}", "unknown placeholder '{Stem}'"),
        ("{stem.upper}", "unknown placeholder '{stem.upper}'"),
        ("{0}", "unknown placeholder '{0}'"),
        ("{}", "unknown placeholder '{}'"),
        ("{stem", "the prompt template is malformed"),
        ("stem}", "the prompt template is malformed"),
        ("{stem:d}", "the prompt template cannot be rendered"),
        ("{parent}", "the prompt is empty for files at the top of the inbox or without an extension"),
        (" {ext} {parent}", "the prompt is empty for files at the top of the inbox or without an extension"),
    ],
)
def test_template_problems(template: str, message: str) -> None:
    problems = template_problems(template)
    assert len(problems) == 1
    assert problems[0][0].startswith(message)


def test_template_problems_suggest_the_placeholder() -> None:
    assert template_problems("{stm}")[0][1].startswith("did you mean '{stem}'?")


@pytest.mark.parametrize("template", ["plain", "{stem} {name} {ext} {parent} {relpath} {rule}", "{{x}}", "{stem:.5}"])
def test_good_templates(template: str) -> None:
    assert template_problems(template) == []
