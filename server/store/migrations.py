"""The database schema: sqlite-utils migrations applied at every start, and the connection
settings every Touchpoint connection uses."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from ..errors import ConfigError
from . import pgschema, rollups
from .engine import Connection, PgConnection, dialect_of, locate, pg_connect
from .eventlog import EVENT_ID_BITS
from .wal import scrub_requested, scrub_waiting

T = TypeVar("T")

log = logging.getLogger("touchpoint.store")
migrations = sqlite_utils.Migrations("touchpoint")
CACHE_KIB = 64 * 1024
WAL_LIMIT_BYTES = 128 * 1024 * 1024  # the -wal's size in steady use


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE visitors (
            id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            consent_revision INTEGER,
            consent_granted TEXT NOT NULL DEFAULT '[]',
            consent_at INTEGER
        ) WITHOUT ROWID
        """
    )
    # One row per visitor and campaign, kept in step with `events` in the same transaction,
    # so frequency rules read one small index range instead of scanning the event history.
    db.execute(
        """
        CREATE TABLE campaign_state (
            visitor_id TEXT NOT NULL,
            campaign TEXT NOT NULL,
            impressions INTEGER NOT NULL DEFAULT 0,
            last_seen_at INTEGER,
            last_closed_at INTEGER,
            last_converted_at INTEGER,
            PRIMARY KEY (visitor_id, campaign)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            type TEXT NOT NULL,
            campaign TEXT,
            variant TEXT,
            path TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_visitor ON events (visitor_id, at)")
    db.execute("CREATE INDEX events_at ON events (at)")
    # Append-only proof of consent (GDPR Art. 7(1)): rows are never updated.
    db.execute(
        """
        CREATE TABLE consent_log (
            id INTEGER PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            granted TEXT NOT NULL,
            denied TEXT NOT NULL,
            method TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX consent_log_visitor ON consent_log (visitor_id, at)")
    db.execute(
        """
        CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
        BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END
        """
    )


@migrations()
def m002_profiles(db: sqlite_utils.Database) -> None:
    # The profile lives in the visitors row: one primary-key read on the decide path. Counters
    # the decision reads are columns; the rest (touches, attributes, interests) one JSON value.
    for column in (
        "first_seen_at INTEGER",
        "last_seen_at INTEGER",
        "visits INTEGER NOT NULL DEFAULT 0",
        "page_views INTEGER NOT NULL DEFAULT 0",
        "session_started_at INTEGER",
        "session_page_views INTEGER NOT NULL DEFAULT 0",
        "stage TEXT NOT NULL DEFAULT 'visitor'",
        "score REAL NOT NULL DEFAULT 0",
        "identified INTEGER NOT NULL DEFAULT 0",
        "data TEXT NOT NULL DEFAULT '{}'",
    ):
        db.execute(f"ALTER TABLE visitors ADD COLUMN {column}")
    # Per-session caps, and the variant a visitor was shown (so that a change of weights does
    # not move visitors who have already seen one variant to another).
    for column in (
        "session_impressions INTEGER NOT NULL DEFAULT 0",
        "variant TEXT",
        "version INTEGER",
    ):
        db.execute(f"ALTER TABLE campaign_state ADD COLUMN {column}")


@migrations()
def m003_activity(db: sqlite_utils.Database) -> None:
    # Behaviour events (dwell, scroll, clicks, custom events, form submissions, pushed
    # purchases ...) share the event log with campaign events: their name, a number (seconds,
    # percent, value), flat properties as JSON, and where it came from (site or api).
    for column in ("name TEXT", "value REAL", "props TEXT", "source TEXT"):
        db.execute(f"ALTER TABLE events ADD COLUMN {column}")
    # Every lifecycle stage change, with its time and the reason (the rule that matched).
    db.execute(
        """
        CREATE TABLE stage_history (
            id INTEGER PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            reason TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX stage_history_visitor ON stage_history (visitor_id, at)")


@migrations()
def m004_webhooks(db: sqlite_utils.Database) -> None:
    # The outbox: a webhook is queued in the same transaction as the change it reports, and
    # delivered from here at least once (docs/webhooks.md). A worker claims a row by setting
    # lease_until; a row whose lease has run out (its worker died) can be claimed again.
    db.execute(
        """
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            endpoint TEXT NOT NULL,
            event TEXT NOT NULL,
            key TEXT NOT NULL,
            visitor_id TEXT,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_status INTEGER,
            last_error TEXT,
            delivered_at INTEGER,
            UNIQUE (endpoint, key)
        )
        """
    )
    db.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at)")
    # The body holds profile data: erasing a visitor deletes their rows (erase_webhooks).
    db.execute("CREATE INDEX webhook_outbox_visitor ON webhook_outbox (visitor_id)")


@migrations()
def m005_identity(db: sqlite_utils.Database) -> None:
    # Identifiers as keyed hashes (profiles/identity.py); `value` holds the clear e-mail address
    # only with data_depth = full.
    db.execute(
        """
        CREATE TABLE identities (
            kind TEXT NOT NULL,
            hash TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            value TEXT,
            PRIMARY KEY (kind, hash)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX identities_visitor ON identities (visitor_id)")
    # Which anonymous visitor was merged into which known one: an export or erasure of a person
    # follows these to the consent log rows kept under the merged id.
    db.execute(
        """
        CREATE TABLE merges (
            id INTEGER PRIMARY KEY,
            from_id TEXT NOT NULL,
            into_id TEXT NOT NULL,
            at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX merges_into ON merges (into_id)")
    # Purchases pushed through the server API, once per order id (a retried push is a no-op).
    db.execute(
        """
        CREATE TABLE orders (
            order_id TEXT PRIMARY KEY,
            visitor_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            value REAL,
            currency TEXT,
            items TEXT NOT NULL DEFAULT '[]'
        )
        """
    )
    db.execute("CREATE INDEX orders_visitor ON orders (visitor_id)")


@migrations()
def m006_coupons(db: sqlite_utils.Database) -> None:
    # One row per unique code of an imported or generated pool (docs/coupons.md). A code is
    # free while both visitor_id and assigned_at are NULL: a code redeemed without having been
    # handed out, or one whose visitor was anonymised, keeps assigned_at and never goes back
    # into the stock.
    db.execute(
        """
        CREATE TABLE coupon_codes (
            code TEXT PRIMARY KEY,
            pool TEXT NOT NULL,
            added_at INTEGER NOT NULL,
            visitor_id TEXT,
            campaign TEXT,
            variant TEXT,
            assigned_at INTEGER,
            expires_at INTEGER
        ) WITHOUT ROWID
        """
    )
    # One code per visitor and pool. Visitor first: merges and erasure look rows up by visitor.
    db.execute(
        "CREATE UNIQUE INDEX coupon_codes_visitor ON coupon_codes (visitor_id, pool)"
        " WHERE visitor_id IS NOT NULL"
    )
    # The stock: a claim takes the first entry, a probe asks whether there is one. The two
    # columns, NULL in every entry, let both read the index alone.
    db.execute(
        "CREATE INDEX coupon_codes_free ON coupon_codes (pool, visitor_id, assigned_at)"
        " WHERE visitor_id IS NULL AND assigned_at IS NULL"
    )
    # Static pools hand everybody the same code: who was shown it, for attribution.
    db.execute(
        """
        CREATE TABLE coupon_reveals (
            pool TEXT NOT NULL,
            visitor_id TEXT NOT NULL,
            code TEXT NOT NULL,
            campaign TEXT,
            variant TEXT,
            at INTEGER NOT NULL,
            expires_at INTEGER,
            PRIMARY KEY (pool, visitor_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX coupon_reveals_visitor ON coupon_reveals (visitor_id)")
    # One redemption per order id: the shop's retry of a redemption finds it here.
    db.execute(
        """
        CREATE TABLE coupon_redemptions (
            order_id TEXT PRIMARY KEY,
            code TEXT NOT NULL,
            pool TEXT NOT NULL,
            visitor_id TEXT,
            campaign TEXT,
            variant TEXT,
            value REAL,
            currency TEXT,
            at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX coupon_redemptions_code ON coupon_redemptions (code)")
    db.execute("CREATE INDEX coupon_redemptions_visitor ON coupon_redemptions (visitor_id)")
    # How many codes a generated pool has made, in advance or on demand: its `limit` counts
    # them without counting rows (which an erasure may delete).
    db.execute(
        """
        CREATE TABLE coupon_pools (
            pool TEXT PRIMARY KEY,
            generated INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID
        """
    )


@migrations()
def m007_privacy(db: sqlite_utils.Database) -> None:
    # The minimal proof of an erasure (docs/privacy.md#erasure): when, how it was asked for,
    # how many rows went from which table. `subject` is the keyed pseudonym the person's consent
    # log rows were given (identity.erased_id), so that the person, presenting their visitor
    # id, can be shown the erasure and the consent history kept; nothing else names them.
    db.execute(
        """
        CREATE TABLE erasures (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            via TEXT NOT NULL CHECK (via IN ('cli', 'api', 'page')),
            requested_by TEXT,
            subject TEXT NOT NULL,
            rows TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX erasures_subject ON erasures (subject)")
    # The consent log stays append-only, with one exception: erasure replaces a visitor id by
    # its pseudonym, once, leaving the rest of the row as it was (GDPR Art. 7(1), 17(3)(e)).
    db.execute("DROP TRIGGER consent_log_append_only")
    db.execute(
        """
        CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
        WHEN NOT (NEW.visitor_id LIKE 'erased:%' AND OLD.visitor_id NOT LIKE 'erased:%'
                  AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.revision = OLD.revision
                  AND NEW.granted = OLD.granted AND NEW.denied = OLD.denied
                  AND NEW.method = OLD.method)
        BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END
        """
    )
    # An export or erasure follows merges both ways.
    db.execute("CREATE INDEX merges_from ON merges (from_id)")


@migrations()
def m008_retention(db: sqlite_utils.Database) -> None:
    # The purge (server/store/retention.py) walks each kind of row it deletes in time order:
    # a profile by its last activity (m015 replaced this index: SEEN_BY_HOUR), consent log
    # entries, merges and erasure records by their time. (Delivered webhooks: webhook_outbox_due,
    # by state.)
    db.execute(
        "CREATE INDEX visitors_active_at ON visitors"
        " (max(created_at, coalesce(consent_at, 0), coalesce(last_seen_at, 0)))"
    )
    db.execute("CREATE INDEX consent_log_at ON consent_log (at)")
    db.execute("CREATE INDEX merges_at ON merges (at)")
    db.execute("CREATE INDEX erasures_at ON erasures (at)")
    # A purged profile takes its rows in every table with a visitor_id column with it (and an
    # erasure does the same): each such table needs an index that starts with visitor_id.
    for table in db.table_names():
        columns = {column.name for column in db[table].columns}
        if "visitor_id" in columns and not _indexed_by_visitor(db, table):
            db.execute(f'CREATE INDEX "{table}_visitor" ON "{table}" (visitor_id)')
    # Which worker runs the periodic purge: one per interval, whichever claims it first.
    db.execute(
        "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)"
    )


@migrations()
def m009_health(db: sqlite_utils.Database) -> None:
    # GET /tp/healthz proves the database can be written by writing this one row (a full disk
    # or a read-only file fails it), names nobody.
    db.execute(
        "CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL)"
    )


@migrations()
def m010_verified_identity(db: sqlite_utils.Database) -> None:
    # Whether the shop vouched for an identifier (a signed token, docs/security.md): a claim
    # typed into a form never joins the profile that holds it; only a verified one does.
    db.execute("ALTER TABLE identities ADD COLUMN verified INTEGER NOT NULL DEFAULT 0")


@migrations()
def m011_rollups(db: sqlite_utils.Database) -> None:
    # Counts without personal data, written with what they count (store/rollups.py) and kept
    # past the event log's retention: what campaigns and lifecycle stages achieve, per day in
    # the site's time zone.
    counters = ",\n".join(
        f"            {name} INTEGER NOT NULL DEFAULT 0"
        for name in (
            "armed",
            "exposures",
            "closes",
            "conversions",
            "forms",
            "reveals",
            "redemptions",
            "unique_exposed",
            "unique_converted",
        )
    )
    db.execute(
        f"""
        CREATE TABLE rollup_campaigns (
            day TEXT NOT NULL,
            campaign TEXT NOT NULL,
            variant TEXT NOT NULL,
            version INTEGER NOT NULL,
{counters},
            PRIMARY KEY (campaign, version, variant, day)
        ) WITHOUT ROWID
        """
    )
    # The same per calendar month (YYYY-MM), so that a report over a year reads 12 rows a
    # variant, not 365.
    db.execute(
        f"""
        CREATE TABLE rollup_campaign_months (
            campaign TEXT NOT NULL,
            version INTEGER NOT NULL,
            variant TEXT NOT NULL,
            month TEXT NOT NULL,
{counters},
            PRIMARY KEY (campaign, version, variant, month)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_revenue (
            day TEXT NOT NULL,
            campaign TEXT NOT NULL,
            variant TEXT NOT NULL,
            version INTEGER NOT NULL,
            currency TEXT NOT NULL,
            redemptions INTEGER NOT NULL DEFAULT 0,
            revenue REAL NOT NULL DEFAULT 0,
            revenue_squares REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (campaign, version, variant, currency, day)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_stages (
            day TEXT NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            moves INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, before, after)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_thresholds (
            day TEXT NOT NULL,
            threshold TEXT NOT NULL,
            crossings INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, threshold)
        ) WITHOUT ROWID
        """
    )
    # Which campaign version a visitor's first exposure and first conversion were counted for,
    # so that each visitor counts once per version.
    db.execute("ALTER TABLE campaign_state ADD COLUMN exposed_version INTEGER")
    db.execute("ALTER TABLE campaign_state ADD COLUMN converted_version INTEGER")
    roll_up_history(db)


@migrations()
def m012_first_counts(db: sqlite_utils.Database) -> None:
    # Whether a state row's last write was the visitor's first exposure to a campaign version or
    # their first conversion since, returned by that write itself (store/visitors.py): counting
    # visitors once costs the writer no statement of its own.
    db.execute("ALTER TABLE campaign_state ADD COLUMN was_first INTEGER NOT NULL DEFAULT 0")


@migrations()
def m013_admin_users(db: sqlite_utils.Database) -> None:
    # The console's users (server/admin/): created from the command line. Sessions are signed
    # cookies rather than rows; `sessions` is their generation, raised to end every session of
    # a user at once (a new password, a sign-out).
    db.execute(
        """
        CREATE TABLE admin_users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'editor')),
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            password_changed_at INTEGER NOT NULL,
            sessions INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID
        """
    )


@migrations()
def m014_admin_audit(db: sqlite_utils.Database) -> None:
    # Who looked up, exported or erased whom in the console (server/admin/visitors.py). The
    # reference is kept as the store finds people: an e-mail address or customer id as its
    # keyed hash (kind 'email' or 'customer'), a visitor id (kind 'id') as it is. No column is
    # named visitor_id, so an erasure keeps the record of itself; retention deletes it after
    # admin_audit_days.
    db.execute(
        """
        CREATE TABLE admin_audit (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            ref_kind TEXT NOT NULL,
            ref TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX admin_audit_at ON admin_audit (at)")


@migrations()
def m015_seen_hour(db: sqlite_utils.Database) -> None:
    # The purge's index of a profile's last activity (m008) read last_seen_at, so every page
    # view rewrote an index entry as well as the row (issue 19: about a fifth of the writer's
    # SQLite time for a page view). It reads the hour of the last page view instead, which a
    # trigger keeps in step with last_seen_at and which changes once an hour at most: the
    # index gives the purge its candidates (retention.py: never fewer than the exact
    # expression finds) and the row's exact time decides.
    db.execute("ALTER TABLE visitors ADD COLUMN seen_hour INTEGER")
    db.execute("UPDATE visitors SET seen_hour = last_seen_at / 3600")
    db.execute("DROP INDEX visitors_active_at")
    db.execute(
        "CREATE INDEX visitors_active_at ON visitors"
        " (max(created_at, coalesce(consent_at, 0), coalesce(seen_hour, 0) * 3600))"
    )
    for event in ("UPDATE OF last_seen_at", "INSERT"):
        name = "visitors_seen_hour_" + event.split()[0].lower()
        db.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON visitors"
            " WHEN new.last_seen_at / 3600 IS NOT new.seen_hour"
            " BEGIN UPDATE visitors SET seen_hour = new.last_seen_at / 3600 WHERE id = new.id; END"
        )


@migrations()
def m016_compact_events(db: sqlite_utils.Database) -> None:
    # The event log is most of the file (issue 19: 147 bytes per event, 63 of them the visitor
    # id in the row and in its index, 15 the index on the time). A visitor gets a number
    # (visitors.num, 1 to 4 bytes) that the event log names them by instead, and an event's id
    # is the second it happened shifted by EVENT_ID_BITS plus its place among that second's
    # events, so ids run in time order: `at` is computed from the id, the purge deletes a
    # range of ids, and no index on the time is needed (store/eventlog.py). A number is given
    # at the visitor's first insert (trigger below); a deleted visitor's number can come back
    # only once their events are gone, since every path that deletes a visitors row deletes or
    # moves their events first. Events of no visitor row cannot be reached by an erasure or
    # the purge any more: they are not copied.
    db.execute("ALTER TABLE visitors ADD COLUMN num INTEGER")
    db.execute(
        "UPDATE visitors SET num = n.num FROM (SELECT id, row_number()"
        " OVER (ORDER BY created_at, id) AS num FROM visitors) AS n WHERE n.id = visitors.id"
    )
    db.execute("CREATE UNIQUE INDEX visitors_num ON visitors (num)")
    db.execute(
        "CREATE TRIGGER visitors_num AFTER INSERT ON visitors WHEN new.num IS NULL BEGIN"
        " UPDATE visitors SET num = (SELECT coalesce(max(num), 0) + 1 FROM visitors)"
        " WHERE id = new.id; END"
    )
    db.execute(
        f"""
        CREATE TABLE events_compact (
            id INTEGER PRIMARY KEY,
            visitor INTEGER NOT NULL,
            at INTEGER GENERATED ALWAYS AS (id >> {EVENT_ID_BITS}) VIRTUAL,
            type TEXT NOT NULL,
            campaign TEXT,
            variant TEXT,
            path TEXT,
            name TEXT,
            value REAL,
            props TEXT,
            source TEXT
        )
        """
    )
    db.execute(
        "INSERT INTO events_compact (id, visitor, type, campaign, variant, path, name, value,"
        f" props, source) SELECT (e.at << {EVENT_ID_BITS})"
        " + row_number() OVER (PARTITION BY e.at ORDER BY e.id) - 1, v.num, e.type,"
        " e.campaign, e.variant, e.path, e.name, e.value, e.props, e.source"
        " FROM events e JOIN visitors v ON v.id = e.visitor_id ORDER BY e.at, e.id"
    )
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events_compact RENAME TO events")
    db.execute("CREATE INDEX events_visitor ON events (visitor)")


def roll_up_history(db: sqlite_utils.Database) -> None:
    """Roll up what the database already holds, once. The site's time zone is not known to a
    migration: these days are UTC days (docs/reports.md says so). Decide answers were never
    recorded, so ``armed`` starts at the upgrade. Reads the event log by visitor id as it is
    before m016_compact_events and after it (tests roll up a database of today's schema)."""
    by_number = "visitor" in db["events"].columns_dict
    who = "(SELECT id FROM visitors WHERE num = visitor)" if by_number else "visitor_id"
    db.execute(
        f"CREATE TEMP VIEW history_events AS SELECT {who} AS visitor_id, at, type, campaign,"
        " variant, name FROM main.events"
    )
    day = "date(at, 'unixepoch')"
    version = (
        "coalesce((SELECT s.version FROM campaign_state s"
        " WHERE s.visitor_id = e.visitor_id AND s.campaign = e.campaign), 1)"
    )
    add = " ON CONFLICT (campaign, version, variant, day) DO UPDATE SET {0} = {0} + excluded.{0}"
    for kinds, counter in (
        ("'impression', 'exposure'", "exposures"),
        ("'close'", "closes"),
        ("'convert'", "conversions"),
    ):
        db.execute(
            f"INSERT INTO rollup_campaigns (day, campaign, variant, version, {counter})"
            f" SELECT {day}, campaign, coalesce(variant, ''), {version}, count(*)"
            f" FROM history_events e WHERE type IN ({kinds}) AND campaign IS NOT NULL"
            " GROUP BY 1, 2, 3, 4" + add.format(counter)
        )
    # Each visitor's first exposure (their variant then), and first conversion after it.
    db.execute(
        "CREATE TEMP TABLE first_exposures AS SELECT visitor_id, campaign, min(at) AS at,"
        " variant FROM history_events"
        " WHERE type IN ('impression', 'exposure') AND campaign IS NOT NULL"
        " GROUP BY visitor_id, campaign"
    )
    db.execute(
        f"INSERT INTO rollup_campaigns (day, campaign, variant, version, unique_exposed)"
        f" SELECT {day}, campaign, coalesce(variant, ''), {version}, count(*)"
        f" FROM first_exposures e GROUP BY 1, 2, 3, 4" + add.format("unique_exposed")
    )
    db.execute(
        f"INSERT INTO rollup_campaigns (day, campaign, variant, version, unique_converted)"
        f" SELECT date(c.at, 'unixepoch'), e.campaign, coalesce(e.variant, ''), {version},"
        f" count(*) FROM first_exposures e JOIN (SELECT visitor_id, campaign, min(at) AS at"
        f" FROM history_events WHERE type = 'convert' GROUP BY visitor_id, campaign) c"
        f" ON c.visitor_id = e.visitor_id AND c.campaign = e.campaign AND c.at >= e.at"
        f" GROUP BY 1, 2, 3, 4" + add.format("unique_converted")
    )
    db.execute(
        "UPDATE campaign_state SET exposed_version = coalesce(version, 1),"
        " converted_version = CASE WHEN EXISTS (SELECT 1 FROM history_events c"
        "   WHERE c.visitor_id = campaign_state.visitor_id AND c.type = 'convert'"
        "   AND c.campaign = campaign_state.campaign) THEN coalesce(version, 1) END"
        " WHERE EXISTS (SELECT 1 FROM first_exposures e"
        "   WHERE e.visitor_id = campaign_state.visitor_id"
        "   AND e.campaign = campaign_state.campaign)"
    )
    db.execute("DROP TABLE first_exposures")
    # Forms sent in a popup are named after their campaign.
    db.execute(
        f"INSERT INTO rollup_campaigns (day, campaign, variant, version, forms)"
        f" SELECT {day}, e.name, coalesce((SELECT s.variant FROM campaign_state s"
        f"   WHERE s.visitor_id = e.visitor_id AND s.campaign = e.name), ''),"
        f" coalesce((SELECT s.version FROM campaign_state s"
        f"   WHERE s.visitor_id = e.visitor_id AND s.campaign = e.name), 1), count(*)"
        f" FROM history_events e WHERE type = 'form_submit'"
        f" AND EXISTS (SELECT 1 FROM campaign_state s"
        f"   WHERE s.visitor_id = e.visitor_id AND s.campaign = e.name)"
        f" GROUP BY 1, 2, 3, 4" + add.format("forms")
    )
    # Codes handed out, and redemptions with their revenue (kept beyond the event log).
    db.execute(
        f"INSERT INTO rollup_campaigns (day, campaign, variant, version, reveals)"
        f" SELECT day, campaign, variant, version, count(*) FROM ("
        f" SELECT date(assigned_at, 'unixepoch') AS day, campaign, coalesce(variant, '')"
        f" AS variant, {version} AS version FROM coupon_codes e"
        f" WHERE campaign IS NOT NULL AND assigned_at IS NOT NULL"
        f" UNION ALL SELECT {day}, campaign, coalesce(variant, ''), {version}"
        f" FROM coupon_reveals e WHERE campaign IS NOT NULL)"
        f" GROUP BY 1, 2, 3, 4" + add.format("reveals")
    )
    db.execute(
        f"INSERT INTO rollup_campaigns (day, campaign, variant, version, redemptions)"
        f" SELECT {day}, campaign, coalesce(variant, ''), {version}, count(*)"
        f" FROM coupon_redemptions e WHERE campaign IS NOT NULL GROUP BY 1, 2, 3, 4"
        + add.format("redemptions")
    )
    db.execute(
        f"INSERT INTO rollup_revenue (day, campaign, variant, version, currency, redemptions,"
        f" revenue, revenue_squares) SELECT {day}, campaign, coalesce(variant, ''), {version},"
        f" coalesce(currency, ''), count(*), total(value), total(value * value)"
        f" FROM coupon_redemptions e WHERE campaign IS NOT NULL GROUP BY 1, 2, 3, 4, 5"
    )
    db.execute(
        f"INSERT INTO rollup_stages (day, before, after, moves) SELECT {day},"
        f" coalesce(before, ''), after, count(*) FROM stage_history GROUP BY 1, 2, 3"
    )
    db.execute(
        "INSERT INTO rollup_campaign_months SELECT campaign, version, variant,"
        " substr(day, 1, 7), "
        + ", ".join(f"sum({name})" for name in rollups.CAMPAIGN_COUNTS)
        + " FROM rollup_campaigns GROUP BY 1, 2, 3, 4"
    )
    # Every profile entered the lifecycle at its first page view, as a visitor.
    db.execute(
        "INSERT INTO rollup_stages (day, before, after, moves)"
        " SELECT date(first_seen_at, 'unixepoch'), '', 'visitor', count(*) FROM visitors"
        " WHERE first_seen_at IS NOT NULL GROUP BY 1"
        " ON CONFLICT (day, before, after) DO UPDATE SET moves = moves + excluded.moves"
    )
    db.execute("DROP VIEW history_events")


def _indexed_by_visitor(db: sqlite_utils.Database, table: str) -> bool:
    for (index,) in db.execute(f'SELECT name FROM pragma_index_list("{table}")').fetchall():
        first = db.execute(
            f'SELECT name FROM pragma_index_info("{index}") WHERE seqno = 0'
        ).fetchone()
        if first and first[0] == "visitor_id":
            return True
    return False


def connect(path: Path | str, *, large_cache: bool = False) -> Connection:
    """A connection with the pragmas every Touchpoint connection uses; on a ``postgresql://``
    database, a :class:`PgConnection` that takes the same statements (store/engine.py).
    ``large_cache``: a page cache that holds the upper B-tree levels of millions of rows
    (SQLite's own; PostgreSQL's is the server's shared_buffers)."""
    location = locate(path)
    if location.is_postgresql:
        return pg_connect(location.url or "")
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode survives a crash of the process; only a power loss can drop the
    # last commits. Documented in docs/operations.md.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # A -wal written from its start again is cut back to this size (a burst of writes may
    # have grown it past; under a steady load the writer keeps it near: store/writer.py).
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
    if large_cache:
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    # PostgreSQL's greatest() and least(), which ignore NULLs (SQLite's scalar max() and min()
    # return NULL): one spelling of the store's SQL for both engines.
    conn.create_function("greatest", -1, _greatest, deterministic=True)
    conn.create_function("least", -1, _least, deterministic=True)
    return conn


def _greatest(*values: Any) -> Any:
    return max((v for v in values if v is not None), default=None)


def _least(*values: Any) -> Any:
    return min((v for v in values if v is not None), default=None)


def migrate(path: Path | str) -> list[str]:
    """Apply pending migrations; returns the names applied. Safe to call at every start."""
    location = locate(path)
    if location.is_postgresql:
        pg = pg_connect(location.url or "")
        try:
            return pgschema.migrate(pg)
        finally:
            pg.close()
    # The database holds personal data: readable by the service's user only. SQLite gives the
    # -wal and -shm files the database file's permissions.
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = connect(path)
    assert isinstance(conn, sqlite3.Connection)
    try:
        db = sqlite_utils.Database(conn)
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
        return pending
    finally:
        conn.close()


def exists(path: Path | str) -> bool:
    """Whether there is a database to use: a SQLite file, or any PostgreSQL database (the
    server creates the schema in an empty one, and a command migrates it)."""
    location = locate(path)
    return location.is_postgresql or Path(path).exists()


def no_database(path: Path | str) -> ConfigError:
    """The error of a command run where the database is not: a wrong data folder, or a server
    that has not started yet (it creates the database on its first start)."""
    return ConfigError(
        f"no database at {Path(path).resolve()}: the server creates it when it first starts;"
        " start it once (touchpoint serve), or pass the server's --data-dir (or --database)"
    )


@contextlib.contextmanager
def database(path: Path | str) -> Iterator[Connection]:
    """The database at ``path`` for a command run beside the server: migrated, connected, and
    closed afterwards. Refuses to create one where none is (a mistyped --data-dir)."""
    if not exists(path):
        raise no_database(path)
    migrate(path)
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def read_snapshot(path: Path | str, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` in one read-only transaction of a connection of its own, closed after: one
    consistent snapshot for reports, exports and lists. Blocking: run it on a worker thread
    (the server API, the console)."""
    conn = connect(path)
    try:
        if isinstance(conn, PgConnection):
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        else:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")
        return fn(conn)
    finally:
        conn.close()


@contextlib.contextmanager
def immediate(conn: Connection) -> Iterator[Connection]:
    """One write transaction as the server's writer runs them (``BEGIN IMMEDIATE``: it waits for
    the write lock, then nothing can come between its reads and writes), committed at the end
    and rolled back on an error. For commands writing outside the server's writer."""
    conn.execute(dialect_of(conn).begin_write)
    try:
        with rollups.tallied(conn) as tally:
            yield conn
            tally.flush(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if scrub_requested(conn) and not scrub_waiting(conn):
        log.warning(
            "another connection kept reading an older snapshot: deleted values stay in the"
            " write-ahead log until the server's next checkpoint"
        )
