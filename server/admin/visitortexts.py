"""The texts of the visitor lookup and its audit log, in English and German."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "visitors.title": ("Visitor lookup", "Besuchersuche"),
    "visitors.intro": (
        "Find what is stored about one person, to answer their request for access, a copy or"
        " erasure. Every lookup is written to the audit log with your name.",
        "Finden Sie, was über eine Person gespeichert ist, um ihre Anfrage auf Auskunft, Kopie"
        " oder Löschung zu beantworten. Jede Suche wird mit Ihrem Namen im Prüfprotokoll"
        " festgehalten.",
    ),
    "visitors.by": ("Find by", "Suchen nach"),
    "visitors.kind.email": ("E-mail address", "E-Mail-Adresse"),
    "visitors.kind.customer": ("Customer id", "Kundennummer"),
    "visitors.kind.id": ("Visitor id", "Besucher-ID"),
    "visitors.q": ("Reference", "Angabe"),
    "visitors.q_hint": (
        "A visitor id may be pasted as the whole tp_vid cookie.",
        "Eine Besucher-ID kann als ganzes tp_vid-Cookie eingefügt werden.",
    ),
    "visitors.find": ("Look up", "Suchen"),
    "visitors.audit_link": ("Audit log of lookups", "Prüfprotokoll der Suchen"),
    "visitors.empty": ("Enter what to look for.", "Geben Sie an, wonach gesucht wird."),
    "visitors.bad_kind": ("Choose what to find by.", "Wählen Sie, wonach gesucht wird."),
    "visitors.bad_email": (
        "This is not an e-mail address.",
        "Das ist keine E-Mail-Adresse.",
    ),
    "visitors.bad_customer": (
        "This is not a customer id (at most 200 characters).",
        "Das ist keine Kundennummer (höchstens 200 Zeichen).",
    ),
    "visitors.bad_id": ("This is not a visitor id.", "Das ist keine Besucher-ID."),
    "visitors.missing": (
        "Nothing is stored about this person.",
        "Über diese Person ist nichts gespeichert.",
    ),
    "visitors.only_consent": (
        "Only consent log entries are kept (as proof of consent, under a pseudonym):",
        "Nur Einträge im Einwilligungsprotokoll sind erhalten (als Nachweis, unter einem"
        " Pseudonym):",
    ),
    "visitors.erased": (
        "Erased (erasure record #{id}). Nothing is stored about this person any more, except"
        " their consent log under a pseudonym.",
        "Gelöscht (Löschprotokoll Nr. {id}). Über diese Person ist nichts mehr gespeichert,"
        " außer ihrem Einwilligungsprotokoll unter einem Pseudonym.",
    ),
    "visitors.unavailable": (
        "The audit log cannot be written right now, so nothing is shown or changed. Try again"
        " later.",
        "Das Prüfprotokoll kann gerade nicht geschrieben werden, daher wird nichts angezeigt"
        " oder geändert. Versuchen Sie es später noch einmal.",
    ),
    "visitor.title": ("Visitor", "Besucher"),
    "visitor.ids": ("Visitor ids", "Besucher-IDs"),
    "visitor.profile": ("Profile", "Profil"),
    "visitor.no_profile": (
        "No profile (no personalisation consent).",
        "Kein Profil (keine Einwilligung in Personalisierung).",
    ),
    "visitor.stage": ("Stage", "Phase"),
    "visitor.score": ("Score stored", "Gespeicherter Score"),
    "visitor.score_now": ("Score now", "Score jetzt"),
    "visitor.score_at": ("Last scored", "Zuletzt bewertet"),
    "visitor.visits": ("Visits", "Besuche"),
    "visitor.page_views": ("Page views", "Seitenaufrufe"),
    "visitor.first_seen": ("First seen", "Zuerst gesehen"),
    "visitor.last_seen": ("Last seen", "Zuletzt gesehen"),
    "visitor.identifiers": ("Identifiers", "Kennungen"),
    "visitor.verified": ("verified", "bestätigt"),
    "visitor.claimed": ("claimed", "angegeben"),
    "visitor.none": ("None.", "Keine."),
    "visitor.decay": ("Score decay", "Abbau des Scores"),
    "visitor.decay_rule": (
        "Half-life {half_life} days, starting {after} days after the last activity.",
        "Halbwertszeit {half_life} Tage, ab {after} Tagen nach der letzten Aktivität.",
    ),
    "visitor.no_decay": (
        "The score does not change without activity.",
        "Der Score ändert sich ohne Aktivität nicht.",
    ),
    "visitor.decay_chart": (
        "The score over the next {days} days without activity",
        "Der Score in den nächsten {days} Tagen ohne Aktivität",
    ),
    "visitor.decay_numbers": ("The numbers, day by day", "Die Zahlen, Tag für Tag"),
    "visitor.stages": ("Stage history", "Phasenverlauf"),
    "visitor.events": ("Recent events", "Letzte Ereignisse"),
    "visitor.events_of": (
        "The newest {shown} of {total} events",
        "Die neuesten {shown} von {total} Ereignissen",
    ),
    "visitor.campaigns": ("Campaign history", "Kampagnenverlauf"),
    "visitor.consent": ("Consent log", "Einwilligungsprotokoll"),
    "visitor.coupons": ("Coupons", "Gutscheine"),
    "visitor.orders": ("Orders", "Bestellungen"),
    "visitor.actions": ("Requests", "Anfragen"),
    "visitor.export": ("Export as JSON", "Als JSON exportieren"),
    "visitor.erase": ("Erase…", "Löschen…"),
    "visitor.rows": ("Rows stored", "Gespeicherte Zeilen"),
    "visitor.col.at": ("Time (UTC)", "Zeit (UTC)"),
    "visitor.col.before": ("From", "Von"),
    "visitor.col.after": ("To", "Nach"),
    "visitor.col.reason": ("Reason", "Grund"),
    "visitor.col.type": ("Type", "Typ"),
    "visitor.col.path": ("Page", "Seite"),
    "visitor.col.detail": ("Detail", "Detail"),
    "visitor.col.campaign": ("Campaign", "Kampagne"),
    "visitor.col.variant": ("Variant", "Variante"),
    "visitor.col.impressions": ("Shown", "Gezeigt"),
    "visitor.col.last_seen": ("Last shown", "Zuletzt gezeigt"),
    "visitor.col.closed": ("Closed", "Geschlossen"),
    "visitor.col.converted_at": ("Converted", "Konvertiert"),
    "visitor.col.revision": ("Revision", "Version"),
    "visitor.col.method": ("Method", "Art"),
    "visitor.col.granted": ("Granted", "Erteilt"),
    "visitor.col.denied": ("Denied", "Abgelehnt"),
    "visitor.col.code": ("Code", "Code"),
    "visitor.col.pool": ("Pool", "Pool"),
    "visitor.col.what": ("What", "Was"),
    "visitor.col.order": ("Order", "Bestellung"),
    "visitor.col.value": ("Value", "Wert"),
    "visitor.col.day": ("Day", "Tag"),
    "visitor.col.score": ("Score", "Score"),
    "visitor.col.table": ("Table", "Tabelle"),
    "visitor.col.rows": ("Rows", "Zeilen"),
    "visitor.coupon.assigned": ("handed out", "ausgegeben"),
    "visitor.coupon.revealed": ("shown", "gezeigt"),
    "visitor.coupon.redeemed": ("redeemed", "eingelöst"),
    "visitor.erase.title": ("Erase this person?", "Diese Person löschen?"),
    "visitor.erase.intro": (
        "Everything below is deleted at once and cannot be restored. Consent log entries stay"
        " under a pseudonym as proof of consent; coupon codes and redemptions stay without the"
        " visitor id.",
        "Alles Folgende wird sofort gelöscht und kann nicht wiederhergestellt werden."
        " Einträge im Einwilligungsprotokoll bleiben unter einem Pseudonym als Nachweis;"
        " Gutscheincodes und Einlösungen bleiben ohne Besucher-ID.",
    ),
    "visitor.erase.confirm": ("Erase for good", "Endgültig löschen"),
    "visitor.erase.cancel": ("Cancel", "Abbrechen"),
    "audit.title": ("Audit log", "Prüfprotokoll"),
    "audit.intro": (
        "Every lookup, export and erasure in the console, newest first. E-mail addresses and"
        " customer ids are kept only as keyed hashes; entries are deleted after {days} days.",
        "Jede Suche, jeder Export und jede Löschung in der Konsole, neueste zuerst."
        " E-Mail-Adressen und Kundennummern werden nur als verschlüsselter Hash gespeichert;"
        " Einträge werden nach {days} Tagen gelöscht.",
    ),
    "audit.caption": ("Console actions on visitor data", "Zugriffe der Konsole auf Besucherdaten"),
    "audit.empty": ("No entry yet.", "Noch kein Eintrag."),
    "audit.filter": ("Show entries about", "Einträge anzeigen zu"),
    "audit.all": ("Show every entry", "Alle Einträge anzeigen"),
    "audit.none_about": (
        "No entry about this reference.",
        "Kein Eintrag zu dieser Angabe.",
    ),
    "audit.older": ("Older entries", "Ältere Einträge"),
    "audit.back": ("Back to the visitor lookup", "Zurück zur Besuchersuche"),
    "audit.col.user": ("User", "Benutzer"),
    "audit.col.action": ("Action", "Aktion"),
    "audit.col.ref": ("Reference", "Angabe"),
    "audit.action.lookup": ("lookup", "Suche"),
    "audit.action.export": ("export", "Export"),
    "audit.action.erase": ("erasure", "Löschung"),
    "audit.action.simulate": ("simulation", "Simulation"),
}
