"""The rules folder's files, its signature and snapshot (server/rules/folder.py)."""

from __future__ import annotations

from pathlib import Path

from touchpoint.rules import folder, ruleset


def test_the_signature_covers_rules_and_templates_but_not_an_editors_swap_files(
    rules_dir: Path,
) -> None:
    before = folder.signature(rules_dir)
    assert {name for name, *_ in before} >= {
        "first-order-coupon.yaml",
        "templates/first-order-coupon.html",
    }
    (rules_dir / "templates" / ".first-order-coupon.html.swp").write_bytes(b"\0vim")
    (rules_dir / "templates" / "first-order-coupon.html~").write_text("backup")
    assert folder.signature(rules_dir) == before
    (rules_dir / "templates" / "new.html").write_text("<p>new</p>")
    assert folder.signature(rules_dir) != before


def test_an_editors_lock_file_and_backup_of_a_campaign_are_not_rules(rules_dir: Path) -> None:
    """Emacs locks a file it edits with a dangling symlink ``.#name.yaml``; a save in progress
    or a backup leaves ``.name.yaml.tmp`` or ``name.yaml~``: none of them is a campaign."""
    before = folder.signature(rules_dir)
    campaigns = len(ruleset.load(rules_dir).campaigns)
    (rules_dir / ".#first-order-coupon.yaml").symlink_to("someone@host.4242:1733")
    (rules_dir / ".first-order-coupon.yaml").write_text("campaign: [half")
    (rules_dir / "first-order-coupon.yaml~").write_text("campaign: old")
    assert folder.signature(rules_dir) == before
    assert len(ruleset.load(rules_dir).campaigns) == campaigns


def test_the_snapshot_digest_follows_names_and_contents(rules_dir: Path) -> None:
    got = folder.read(rules_dir)
    assert got is not None
    signature, snapshot = got
    assert signature == folder.signature(rules_dir)
    assert set(snapshot.files) == {name for name, *_ in signature}
    same = folder.Snapshot.of(dict(snapshot.files))
    assert same.digest == snapshot.digest
    renamed = dict(snapshot.files)
    renamed["other.yaml"] = renamed.pop("first-order-coupon.yaml")
    assert folder.Snapshot.of(renamed).digest != snapshot.digest
    # The boundary between name and contents counts: no two sets share a digest by shifting it.
    assert folder.Snapshot.of({"a": b"bc"}).digest != folder.Snapshot.of({"ab": b"c"}).digest


def test_changed_within() -> None:
    signature = (("a.yaml", 1, 10, 5_000_000_000),)
    assert folder.changed_within(signature, 0.5, now_ns=5_400_000_000)
    assert not folder.changed_within(signature, 0.5, now_ns=5_600_000_000)
    assert folder.changed_within(signature, 0.5, now_ns=1_000_000_000)  # dated in the future
