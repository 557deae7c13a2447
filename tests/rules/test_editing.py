"""Editing a rules file from the console (server/rules/editing.py): checked, atomic, no lost
update, every version kept and restorable."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from touchpoint.errors import RequestError
from touchpoint.rules import editing, ruleset
from touchpoint.rules.editing import Conflict, History, Invalid

NAME = "first-order-coupon.yaml"


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "data")


def changed(text: str) -> str:
    return text.replace("priority: 10", "priority: 11")


def test_a_valid_change_is_saved_and_kept_with_the_version_it_replaced(
    rules_dir: Path, history: History
) -> None:
    before = editing.read(rules_dir, NAME)
    assert "priority: 10" in before.text and before.version
    saved = editing.save(
        rules_dir, history, NAME, changed(before.text), version=before.version, author="eva", at=10
    )
    assert (rules_dir / NAME).read_text() == changed(before.text)
    assert next(c for c in ruleset.load(rules_dir).campaigns if c.id == "first-order-coupon")
    kept = history.revisions(NAME)
    assert [(r.author, r.action) for r in kept] == [("eva", "save"), ("on disk", "on disk")]
    assert kept[0] == saved
    assert history.text(kept[1]) == before.text
    assert [p.name for p in rules_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_a_change_with_an_error_is_refused_with_file_line_and_column(
    rules_dir: Path, history: History
) -> None:
    before = editing.read(rules_dir, NAME)
    broken = before.text.replace("priority: 10", "priority: high")
    with pytest.raises(Invalid) as refused:
        editing.save(rules_dir, history, NAME, broken, version=before.version, author="eva", at=1)
    assert refused.value.status == 422
    (problem,) = [p for p in refused.value.problems if p.severity == "error"]
    assert (problem.file, problem.key) == (NAME, "priority")
    assert problem.line == before.text.splitlines().index("priority: 10") + 1
    assert str(refused.value).startswith(f"{NAME}:{problem.line}:")
    assert (rules_dir / NAME).read_text() == before.text
    assert history.revisions() == []


def test_check_names_problems_as_touchpoint_check_does(rules_dir: Path) -> None:
    problems = editing.check(rules_dir, "templates/first-order-coupon.html", "{% if %}")
    assert problems and all(not p.file.startswith("/") for p in problems)
    assert editing.check(rules_dir, NAME, editing.read(rules_dir, NAME).text) == []


def test_a_file_changed_on_disk_since_it_was_opened_is_not_overwritten(
    rules_dir: Path, history: History
) -> None:
    opened = editing.read(rules_dir, NAME)
    theirs = opened.text.replace("priority: 10", "priority: 40")
    (rules_dir / NAME).write_text(theirs)
    with pytest.raises(Conflict) as refused:
        editing.save(
            rules_dir, history, NAME, changed(opened.text), version=opened.version, author="e", at=1
        )
    assert refused.value.status == 409
    assert refused.value.current.text == theirs
    assert (rules_dir / NAME).read_text() == theirs


def test_of_two_saves_from_the_same_version_one_wins_and_the_other_is_told(
    rules_dir: Path, history: History
) -> None:
    opened = editing.read(rules_dir, NAME)
    outcomes: list[str] = []

    def save(priority: int) -> None:
        text = opened.text.replace("priority: 10", f"priority: {priority}")
        try:
            editing.save(rules_dir, history, NAME, text, version=opened.version, author="e", at=1)
            outcomes.append(f"saved {priority}")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(p,)) for p in (41, 42)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes)[0] == "conflict" and sorted(outcomes)[1].startswith("saved")
    winner = outcomes[0] if outcomes[0] != "conflict" else outcomes[1]
    assert f"priority: {winner.split()[1]}" in (rules_dir / NAME).read_text()


def test_a_restore_brings_back_a_recorded_version(rules_dir: Path, history: History) -> None:
    original = editing.read(rules_dir, NAME)
    editing.save(
        rules_dir, history, NAME, changed(original.text), version=original.version, author="e", at=1
    )
    on_disk = history.revisions(NAME)[-1]
    now = editing.read(rules_dir, NAME)
    restored = editing.restore(
        rules_dir, history, NAME, on_disk.id, version=now.version, author="max", at=2
    )
    assert (rules_dir / NAME).read_text() == original.text
    assert (restored.author, restored.action) == ("max", f"restore of #{on_disk.id}")
    with pytest.raises(RequestError, match="no version #99"):
        editing.restore(rules_dir, history, NAME, 99, version="", author="max", at=3)


def test_a_failed_write_leaves_the_file_whole_and_no_temporary_file(
    rules_dir: Path, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = editing.read(rules_dir, NAME)

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        editing.save(
            rules_dir, history, NAME, changed(opened.text), version=opened.version, author="e", at=1
        )
    assert (rules_dir / NAME).read_text() == opened.text
    assert not [p for p in rules_dir.iterdir() if p.name.startswith(".")]


def test_a_new_file_is_created_from_an_empty_version(rules_dir: Path, history: History) -> None:
    assert editing.read(rules_dir, "summer-sale.yaml") == editing.Draft("summer-sale.yaml", "", "")
    text = (
        "campaign: summer-sale\nkind: popup\ntrigger: load\n"
        "variants:\n  - {id: a, template: first-order-coupon.html}\n"
    )
    editing.save(rules_dir, history, "summer-sale.yaml", text, version="", author="e", at=1)
    assert "summer-sale" in {c.id for c in ruleset.load(rules_dir).campaigns}


def test_a_browsers_crlf_lines_are_saved_as_the_files_lf(rules_dir: Path, history: History) -> None:
    opened = editing.read(rules_dir, NAME)
    crlf = changed(opened.text).replace("\n", "\r\n")
    editing.save(rules_dir, history, NAME, crlf, version=opened.version, author="e", at=1)
    assert b"\r" not in (rules_dir / NAME).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "../secret.yaml",
        "/etc/passwd",
        "templates/../../x.html",
        "sub/dir.yaml",
        ".hidden.yaml",
        "notes.txt",
        "templates/x.yaml",
        "zz.yaml\n",
        "templates/x.html\n",
        "",
    ],
)
def test_only_files_of_the_rules_folder_are_edited(rules_dir: Path, name: str) -> None:
    with pytest.raises(RequestError) as refused:
        editing.read(rules_dir, name)
    assert refused.value.status == 404


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["valid", "invalid", "stale", "disk"]), st.integers(0, 99)),
        max_size=8,
    )
)
def test_the_file_is_always_the_last_accepted_text_and_history_can_restore_it(
    rules_dir: Path, tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    """Whatever mix of saves, refused saves, stale saves and edits on disk: the file holds the
    last text that was accepted or written on disk, and every accepted text is in the history."""
    history = History(tmp_path_factory.mktemp("data"))
    original = (rules_dir / NAME).read_text()
    expected = original
    stale = editing.read(rules_dir, NAME).version
    for kind, n in steps:
        current = editing.read(rules_dir, NAME)
        text = original.replace("priority: 10", f"priority: {n}")
        if kind == "disk":
            (rules_dir / NAME).write_text(text)
            expected = text
            continue
        if kind == "invalid":
            text = original.replace("priority: 10", f"priority: x{n}")
        version = stale if kind == "stale" else current.version
        try:
            saved = editing.save(rules_dir, history, NAME, text, version=version, author="e", at=n)
        except (Invalid, Conflict):
            assert kind in ("invalid", "stale")
        else:
            expected = text
            assert history.text(saved) == text
        assert (rules_dir / NAME).read_text() == expected
    (rules_dir / NAME).write_text(original)
