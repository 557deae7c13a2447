"""All SQL lives here: schema migrations, hot-path reads and the single writer.

Concurrency model (see ARCHITECTURE.md): SQLite in WAL mode lets readers run beside one writer.
Primary-key reads on the decide path run directly on the event loop: they cost tens of
microseconds, far less than a hop to a thread pool. Every write goes through :class:`Writer`, one
thread with one connection that commits queued work in groups (``BEGIN IMMEDIATE``), so writes
never contend with each other and a burst of events costs one fsync, not one per event.
"""

from .api import PushResult, UnknownVisitors, push_activities, set_attributes
from .coupons import (
    Claim,
    CouponError,
    CouponExpired,
    CouponRedeemed,
    Redemption,
    UnknownCoupon,
    claim_coupon,
    merge_coupons,
    pool_has_codes,
    redeem_coupon,
)
from .identities import (
    Identified,
    copy_consent,
    find_visitor,
    identify,
    identify_visitor,
    reset_visitor,
)
from .migrations import CACHE_KIB, connect, database, immediate, migrate, migrations
from .outbox import (
    OutboxRow,
    claim_webhooks,
    erase_webhooks,
    prune_webhooks,
    queue_webhook,
    release_webhooks,
    retry_webhooks,
    webhook_attempt_failed,
    webhook_delivered,
    webhook_due,
    webhook_outbox,
)
from .reader import (
    CampaignHistory,
    Reader,
    VisitorRecord,
    identifiers_of,
    profile_of,
    profile_visitor,
)
from .retention import (
    KEPT_TABLES,
    Batch,
    Cutoffs,
    claim_lease,
    count_due,
    purge_consent_log,
    purge_erasures,
    purge_events,
    purge_merges,
    purge_profiles,
    purge_webhooks,
    purged_tables,
)
from .stock import ImportReport, PoolStats, add_generated, coupon_stats, import_codes
from .subjects import (
    Erasure,
    Subject,
    consent_history,
    consent_proof,
    consent_summary,
    erase,
    erase_subject,
    erased_id,
    erasures_of,
    export_subject,
    find_subject,
    merged_ids,
    visitor_exists,
)
from .visitors import (
    Event,
    page_view_activity,
    record_activities,
    record_consent,
    record_events,
    record_page_view,
)
from .writer import Writer

__all__ = [
    "add_generated", "Batch", "CACHE_KIB", "CampaignHistory", "Claim", "claim_coupon",
    "claim_lease", "claim_webhooks", "connect", "consent_history", "consent_proof",
    "consent_summary", "copy_consent", "count_due", "coupon_stats", "CouponError",
    "CouponExpired", "CouponRedeemed", "Cutoffs", "database", "erase", "erase_subject",
    "erase_webhooks", "erased_id", "Erasure", "erasures_of", "Event", "export_subject",
    "find_subject",
    "find_visitor", "Identified", "identifiers_of", "identify", "identify_visitor",
    "immediate", "import_codes", "ImportReport", "KEPT_TABLES", "merge_coupons", "merged_ids",
    "migrate", "migrations", "OutboxRow", "page_view_activity", "pool_has_codes", "PoolStats",
    "profile_of", "profile_visitor", "prune_webhooks", "purge_consent_log", "purge_erasures",
    "purge_events", "purge_merges", "purge_profiles", "purge_webhooks", "purged_tables",
    "push_activities", "PushResult", "queue_webhook", "Reader", "record_activities",
    "record_consent", "record_events", "record_page_view", "redeem_coupon", "Redemption",
    "release_webhooks", "reset_visitor", "retry_webhooks", "set_attributes", "Subject",
    "UnknownCoupon", "UnknownVisitors", "visitor_exists", "VisitorRecord",
    "webhook_attempt_failed", "webhook_delivered", "webhook_due", "webhook_outbox", "Writer",
]  # fmt: skip
