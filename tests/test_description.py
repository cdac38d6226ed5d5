"""The revision note: one grammar, written and read in one place, round-tripped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aegis_delivery.cluster.description import RevisionNote

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@/-",
               min_size=1, max_size=30)  # fmt: skip
TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
SHA = st.from_regex(r"[0-9a-f]{7}", fullmatch=True)
REASON = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=80)


@given(TAG, SHA, WORD, st.none() | WORD, st.none() | REASON)
def test_every_note_reads_back_as_written(
    tag: str, sha: str, by: str, promoted: str | None, reason: str | None
) -> None:
    note = RevisionNote(tag, sha, by, promoted, reason)
    text = note.render()
    assert "\n" not in text
    assert RevisionNote.parse(text) == note


def test_the_rendered_grammar_is_what_helm_history_shows() -> None:
    note = RevisionNote("main-1a2b3c4", "1a2b3c4d5e6f", "ops", "staging@3", "weekly release")
    assert note.render() == (
        "tag=main-1a2b3c4 sha=1a2b3c4 by=ops promoted-from=staging@3 reason=weekly release"
    )
    assert RevisionNote("t", "abc", "a").render() == "tag=t sha=abc by=a"


def test_a_reason_that_looks_like_fields_stays_the_reason() -> None:
    text = RevisionNote("v1", "0123456", "ops", None, "revert tag=v0 by=bob").render()
    assert RevisionNote.parse(text) == RevisionNote("v1", "0123456", "ops", None,
                                                    "revert tag=v0 by=bob")  # fmt: skip


def test_helms_own_descriptions_have_no_fields_and_nothing_is_made_up() -> None:
    for text in ("Install complete", "Upgrade complete", "Rollback to 2", "", "sha= by="):
        assert RevisionNote.parse(text) == RevisionNote()


@given(st.text(max_size=120))
def test_any_description_parses_to_a_note(text: str) -> None:
    note = RevisionNote.parse(text)
    assert all(value is None or value for value in note.__dict__.values())


def test_the_one_clock_gives_whole_utc_seconds_in_both_formats() -> None:
    import datetime as dt

    from aegis_delivery import clock

    moment = dt.datetime(2026, 12, 7, 1, 2, 3, tzinfo=dt.UTC)
    assert clock.iso(moment) == "2026-12-07T01:02:03+00:00"
    assert clock.rfc3339(moment) == "2026-12-07T01:02:03Z"
    now = clock.now()
    assert now.tzinfo is dt.UTC and now.microsecond == 0
