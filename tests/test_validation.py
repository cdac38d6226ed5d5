"""Input validation: each rule accepts what is right and names what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_delivery import validation
from aegis_delivery.errors import InputError


@pytest.mark.parametrize(
    "tag",
    ["latest", "main-abc1234", "pr-12-abc1234", "1.2.3-rc.1", "emergency-fix", "_x", "a" * 128],
)
def test_valid_docker_tags(tag: str) -> None:
    assert validation.docker_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["", "-leading-dash", ".dot", "has space", "slash/tag", "a" * 129, "tag:colon", "é"]
)
def test_invalid_docker_tags_state_the_grammar(tag: str) -> None:
    with pytest.raises(InputError, match="a Docker tag is 1 to 128 characters"):
        validation.docker_tag(tag)


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("42", 42), (7, 7), (" 3 ", 3)])
def test_revisions(value: str | int, expected: int) -> None:
    assert validation.positive_revision(value) == expected


@pytest.mark.parametrize("value", ["0", "abc", "-1", "1.5", "", 0, "²", "٣", "3\n", "0012"])
def test_bad_revisions(value: str | int) -> None:
    with pytest.raises(InputError, match="expected a positive whole number"):
        validation.positive_revision(value)


@given(st.text(max_size=12) | st.integers())
def test_any_revision_input_is_a_number_or_an_input_error(value: str | int) -> None:
    try:
        number = validation.positive_revision(value)
    except InputError as error:
        assert "invalid revision" in error.message
    else:
        assert number >= 1 and str(value).strip(" ") == str(number)


@given(st.text(max_size=140))
def test_any_tag_input_is_a_valid_tag_or_an_input_error(value: str) -> None:
    try:
        tag = validation.docker_tag(value)
    except InputError as error:
        assert "a Docker tag is 1 to 128 characters" in error.message
    else:
        assert tag == value and "\n" not in tag and not tag.startswith(("-", "."))
        assert 1 <= len(tag) <= 128 and tag.isascii()


@pytest.mark.parametrize("tag", ["abc\n", "abc\r", "\nabc"])
def test_a_tag_with_a_newline_is_refused(tag: str) -> None:
    with pytest.raises(InputError):
        validation.docker_tag(tag)


@pytest.mark.parametrize("digest", ["sha256:00", "sha256:" + "A" * 64, "md5:" + "a" * 64, ""])
def test_bad_digests_are_refused(digest: str) -> None:
    with pytest.raises(InputError, match="expected sha256: followed by 64 hex digits"):
        validation.image_digest(digest)


def test_choice_lists_the_options() -> None:
    assert validation.choice("staging", {"staging", "local"}, what="environment") == "staging"
    with pytest.raises(InputError, match="unknown environment 'prod': expected one of local, "):
        validation.choice("prod", {"staging", "local"}, what="environment")


def test_platforms() -> None:
    assert validation.platforms("linux/amd64, linux/arm64") == ("linux/amd64", "linux/arm64")
    with pytest.raises(InputError, match="unknown platform 'darwin/arm64'"):
        validation.platforms("linux/amd64,darwin/arm64")
    with pytest.raises(InputError, match="no platform given"):
        validation.platforms(" , ")


def test_non_empty() -> None:
    assert validation.non_empty("  why  ", what="--reason", hint="say why") == "why"
    for missing in (None, "", "   "):
        with pytest.raises(InputError, match="--reason is required: say why"):
            validation.non_empty(missing, what="--reason", hint="say why")
