//! The outbox in SQLite: its tables, the events written inside the writer's own transactions
//! ([`on_created`], [`on_append`]), the outbox's other writes ([`apply`], each its own
//! transaction on the writer thread) and its reads.

use super::writer::Write;
use super::SqliteStore;
use crate::outbox::{
    Attempt, DueCallback, DueDelivery, Endpoint, NewEndpoint, NewMail, Next, QueuedMail,
};
use crate::{Interview, OutboxStore, Result, StoreError, Ticket};
use duet_protocol::{
    Actor, DeliveryState, EventKind, InterviewId, InterviewMode, LogRecord, Record,
    WebhookDelivery, WebhookEvent,
};
use rusqlite::{params, Connection};

/// Schema version 8.
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    interview_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_events_by_interview ON webhook_events (interview_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL REFERENCES webhook_events(seq),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    interview_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_at INTEGER,
    last_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_chain ON webhook_deliveries (endpoint_id, interview_id, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE TABLE IF NOT EXISTS mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_at INTEGER,
    last_error TEXT,
    sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_at) WHERE state = 'pending';
";

/// Schema version 9: Greenhouse's completion callbacks (the `url` and key of each sent test,
/// and a row per callback owed), and which interview a mail is about (so its erasure takes
/// the mail too).
pub(super) const MIGRATION_9: &str = "
ALTER TABLE partner_tests ADD COLUMN callback_url TEXT;
ALTER TABLE partner_tests ADD COLUMN callback_key TEXT;
CREATE INDEX IF NOT EXISTS partner_tests_by_interview ON partner_tests (interview_id);
CREATE TABLE IF NOT EXISTS partner_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_interview_id TEXT NOT NULL UNIQUE,
    interview_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_at INTEGER,
    last_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS partner_callbacks_due ON partner_callbacks (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS partner_callbacks_by_interview ON partner_callbacks (interview_id);
ALTER TABLE mail_outbox ADD COLUMN interview_id TEXT;
CREATE INDEX IF NOT EXISTS mail_outbox_by_interview ON mail_outbox (interview_id);
";

/// The outbox's writes that stand alone (the events are written with what causes them).
pub(crate) enum OutboxWrite {
    AddWebhook(NewEndpoint),
    RemoveWebhook(String),
    RecordAttempt(i64, Attempt),
    Redeliver(String, i64, i64),
    QueueMail(NewMail),
    RecordMailAttempt(i64, Attempt),
    RecordCallbackAttempt(i64, Attempt),
    Integration(super::integrations::IntegrationWrite),
}

/// `interview.created`, in the transaction that creates the interview.
pub(super) fn on_created(conn: &Connection, interview: &Interview) -> Result<()> {
    let event_id = format!("evt_{}_created", interview.id);
    let data = serde_json::json!({ "interview": interview });
    insert_event(
        conn,
        &event_id,
        WebhookEvent::InterviewCreated,
        &interview.id,
        interview.created_at,
        data,
    )
}

/// The event a log record is, if it is one, in the transaction that appends the record.
pub(super) fn on_append(conn: &Connection, id: &InterviewId, record: &LogRecord) -> Result<()> {
    queue_callback(conn, id, record)?;
    let Some(event) = EventFor::record(id, record) else {
        return Ok(());
    };
    let Some(interview) = super::reads::get_interview(conn, id)? else {
        return Ok(());
    };
    let Some(data) = event.data(&interview, record) else {
        return Ok(());
    };
    insert_event(conn, &event.event_id, event.event, id, record.at_ms, data)
}

/// Queues Greenhouse's completion callback for the interview's sent test, if `record` completes
/// it (see [`Completes`]) and Greenhouse gave a `url`; once per test.
fn queue_callback(conn: &Connection, id: &InterviewId, record: &LogRecord) -> Result<()> {
    let completes = Completes::record(record);
    if completes == Completes::No {
        return Ok(());
    }
    let owed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM partner_tests WHERE interview_id = ?1 AND callback_url IS NOT NULL)",
        )?
        .query_row([id.as_str()], |r| r.get(0))?;
    if !owed {
        return Ok(());
    }
    let complete = match completes {
        Completes::No => false,
        Completes::Yes => true,
        Completes::IfEnded => conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM room_log WHERE interview_id = ?1 AND kind = 'end' AND kind <> 'edit')",
            )?
            .query_row([id.as_str()], |r| r.get(0))?,
        Completes::IfCardSubmitted => {
            let mut stmt = conn.prepare_cached(
                "SELECT data, at_ms FROM room_log WHERE interview_id = ?1 AND kind = 'scorecard' AND kind <> 'edit'",
            )?;
            let cards = stmt.query_map([id.as_str()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })?;
            let mut any = false;
            for card in cards {
                let (data, at_ms) = card?;
                any |= is_submitted_card(&data, at_ms);
            }
            any
        }
    };
    if complete {
        conn.prepare_cached(
            "INSERT INTO partner_callbacks (partner_interview_id, interview_id, state, created_at, next_at) \
             SELECT partner_interview_id, interview_id, 'pending', ?2, ?2 FROM partner_tests \
             WHERE interview_id = ?1 AND callback_url IS NOT NULL ON CONFLICT DO NOTHING",
        )?
        .execute(params![id.as_str(), record.at_ms])?;
    }
    Ok(())
}

/// Whether a log record completes a test Greenhouse sent, and what else must hold: a
/// take-home's submit does; a live interview is complete once it has ended and has a
/// submitted scorecard, whichever comes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completes {
    No,
    Yes,
    /// A submitted scorecard: complete if the interview has ended.
    IfEnded,
    /// The end: complete if a scorecard was submitted before.
    IfCardSubmitted,
}

impl Completes {
    pub(crate) fn record(record: &LogRecord) -> Completes {
        match record.kind {
            EventKind::TakeHomeSubmitted => Completes::Yes,
            EventKind::End => Completes::IfCardSubmitted,
            EventKind::Scorecard if is_submitted_card(&record.data, record.at_ms) => {
                Completes::IfEnded
            }
            _ => Completes::No,
        }
    }
}

/// Whether a scorecard record's data is a submit.
pub(crate) fn is_submitted_card(data: &[u8], at_ms: i64) -> bool {
    matches!(
        Record::decode(EventKind::Scorecard, data, at_ms),
        Ok(Record::Scorecard(change)) if change.action == "submitted"
    )
}

/// The webhook event a log record is, if it is one: what both stores write beside the record,
/// in the transaction that appends it.
pub(crate) struct EventFor {
    pub(crate) event: WebhookEvent,
    pub(crate) event_id: String,
    extra: Option<(&'static str, serde_json::Value)>,
}

impl EventFor {
    pub(crate) fn record(id: &InterviewId, record: &LogRecord) -> Option<EventFor> {
        let (event, event_id, extra) = match record.kind {
            EventKind::Join if record.by == Actor::Candidate => (
                WebhookEvent::InterviewStarted,
                format!("evt_{id}_started"),
                None,
            ),
            EventKind::TakeHomeStarted => (
                WebhookEvent::InterviewStarted,
                format!("evt_{id}_started"),
                None,
            ),
            EventKind::TakeHomeSubmitted => {
                let Ok(Record::TakeHomeSubmitted(submit)) =
                    Record::decode(record.kind, &record.data, record.at_ms)
                else {
                    return None;
                };
                let submitted = serde_json::json!({
                    "reason": submit.reason,
                    "at": submit.at,
                    "started_at": submit.started_at,
                    "deadline": submit.deadline,
                });
                (
                    WebhookEvent::TakeHomeSubmitted,
                    format!("evt_{id}_{}", record.seq),
                    Some(("take_home", submitted)),
                )
            }
            EventKind::End => (
                WebhookEvent::InterviewEnded,
                format!("evt_{id}_{}", record.seq),
                None,
            ),
            EventKind::Scorecard => {
                let Ok(Record::Scorecard(change)) =
                    Record::decode(record.kind, &record.data, record.at_ms)
                else {
                    return None;
                };
                if change.action != "submitted" {
                    return None;
                }
                let scorecard = serde_json::json!({
                    "person": change.person,
                    "recommendation": change.scorecard.recommendation,
                    "level": change.scorecard.level,
                    "ratings": change.scorecard.ratings,
                    "submitted_at": change.scorecard.submitted_at,
                });
                (
                    WebhookEvent::ScorecardSubmitted,
                    format!("evt_{id}_{}", record.seq),
                    Some(("scorecard", scorecard)),
                )
            }
            _ => return None,
        };
        Some(EventFor {
            event,
            event_id,
            extra,
        })
    }

    /// The event's data, given its interview; `None` when it is not an event for this one
    /// after all.
    pub(crate) fn data(
        &self,
        interview: &Interview,
        record: &LogRecord,
    ) -> Option<serde_json::Value> {
        // A take-home starts when the candidate presses Start, not when the link opens.
        if record.kind == EventKind::Join && interview.mode == InterviewMode::TakeHome {
            return None;
        }
        let mut data = serde_json::json!({ "interview": interview, "seq": record.seq });
        if let (Some((key, value)), Some(map)) = (self.extra.clone(), data.as_object_mut()) {
            map.insert(key.to_owned(), value);
        }
        Some(data)
    }
}

/// An event's body as endpoints receive it.
pub(crate) fn body_of_event(
    event_id: &str,
    event: WebhookEvent,
    at_ms: i64,
    data: serde_json::Value,
) -> String {
    serde_json::json!({
        "id": event_id,
        "type": event.as_str(),
        "created": at_ms.div_euclid(1000),
        "data": data,
    })
    .to_string()
}

/// Stores an event (once: a second with the same id is ignored) and a pending delivery for
/// every endpoint that wants it.
fn insert_event(
    conn: &Connection,
    event_id: &str,
    event: WebhookEvent,
    id: &InterviewId,
    at_ms: i64,
    data: serde_json::Value,
) -> Result<()> {
    let body = body_of_event(event_id, event, at_ms, data);
    let added = conn
        .prepare_cached(
            "INSERT INTO webhook_events (event_id, type, interview_id, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?
        .execute(params![event_id, event.as_str(), id.as_str(), at_ms, body])?;
    if added == 0 {
        return Ok(());
    }
    let seq = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (event_seq, endpoint_id, interview_id, state, created_at, next_at) \
         SELECT ?1, id, ?2, 'pending', ?3, ?3 FROM webhook_endpoints \
         WHERE instr(' ' || events || ' ', ' ' || ?4 || ' ') > 0",
    )?
    .execute(params![seq, id.as_str(), at_ms, event.as_str()])?;
    Ok(())
}

/// The outbox's tables an interview's erasure clears (by their `interview_id`), in order
/// (deliveries name events): its webhook events, the mail about it (a candidate's link, name
/// and title), the test Greenhouse sent for it and that test's callback.
pub(crate) const ERASED_WITH_INTERVIEW: [&str; 5] = [
    "webhook_deliveries",
    "webhook_events",
    "mail_outbox",
    "partner_callbacks",
    "partner_tests",
];

pub(crate) fn events_text(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn events_from(text: &str) -> Result<Vec<WebhookEvent>> {
    text.split_whitespace()
        .map(|e| {
            WebhookEvent::parse(e).ok_or_else(|| StoreError::Corrupt(format!("webhook event {e}")))
        })
        .collect()
}

pub(crate) fn next_columns(next: Next) -> (&'static str, Option<i64>) {
    match next {
        Next::Delivered => (DeliveryState::Delivered.as_str(), None),
        Next::RetryAt(at) => (DeliveryState::Pending.as_str(), Some(at)),
        Next::GiveUp => (DeliveryState::Failed.as_str(), None),
    }
}

/// Applies one write in its own transaction.
pub(super) fn apply(conn: &mut Connection, write: &OutboxWrite) -> Result<()> {
    let txn = conn.transaction()?;
    match write {
        OutboxWrite::AddWebhook(e) => {
            txn.execute(
                "INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.id, e.url, events_text(&e.events), e.secret, e.created_at],
            )?;
        }
        OutboxWrite::RemoveWebhook(id) => {
            txn.execute(
                "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                [id],
            )?;
            if txn.execute("DELETE FROM webhook_endpoints WHERE id = ?1", [id])? == 0 {
                return Err(StoreError::NoSuchWebhook);
            }
        }
        OutboxWrite::RecordAttempt(id, a) => {
            let (state, next_at) = next_columns(a.next);
            let delivered_at = (a.next == Next::Delivered).then_some(a.at);
            txn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = ?2, next_at = ?3, last_at = ?4, last_status = ?5, last_error = ?6, delivered_at = ?7 WHERE id = ?1",
                params![id, state, next_at, a.at, a.status, a.error, delivered_at],
            )?;
        }
        OutboxWrite::Redeliver(webhook, delivery, now) => {
            let added = txn.execute(
                "INSERT INTO webhook_deliveries (event_seq, endpoint_id, interview_id, state, created_at, next_at) \
                 SELECT event_seq, endpoint_id, interview_id, 'pending', ?3, ?3 FROM webhook_deliveries \
                 WHERE id = ?2 AND endpoint_id = ?1",
                params![webhook, delivery, now],
            )?;
            if added == 0 {
                return Err(StoreError::NoSuchDelivery);
            }
        }
        OutboxWrite::QueueMail(m) => {
            txn.execute(
                "INSERT INTO mail_outbox (to_addr, subject, body, state, created_at, next_at, interview_id) VALUES (?1, ?2, ?3, 'pending', ?4, ?4, ?5)",
                params![m.to, m.subject, m.body, m.created_at, m.interview_id],
            )?;
        }
        OutboxWrite::Integration(write) => super::integrations::apply(&txn, write)?,
        OutboxWrite::RecordMailAttempt(id, a) => {
            let (state, next_at) = next_columns(a.next);
            let sent = a.next == Next::Delivered;
            // Sent or given up, the body (it may hold a candidate's link) is not needed again.
            let done = !matches!(a.next, Next::RetryAt(_));
            txn.execute(
                "UPDATE mail_outbox SET attempts = attempts + 1, state = ?2, next_at = ?3, last_error = ?4, \
                 sent_at = CASE WHEN ?5 THEN ?6 ELSE sent_at END, body = CASE WHEN ?7 THEN NULL ELSE body END WHERE id = ?1",
                params![id, state, next_at, a.error, sent, a.at, done],
            )?;
        }
        OutboxWrite::RecordCallbackAttempt(id, a) => {
            let (state, next_at) = next_columns(a.next);
            let delivered_at = (a.next == Next::Delivered).then_some(a.at);
            txn.execute(
                "UPDATE partner_callbacks SET attempts = attempts + 1, state = ?2, next_at = ?3, last_at = ?4, \
                 last_status = ?5, last_error = ?6, delivered_at = ?7 WHERE id = ?1",
                params![id, state, next_at, a.at, a.status, a.error, delivered_at],
            )?;
            if next_at.is_none() {
                // Delivered or given up: the key kept for it is not needed again.
                txn.execute(
                    "UPDATE partner_tests SET callback_key = NULL WHERE partner_interview_id = \
                     (SELECT partner_interview_id FROM partner_callbacks WHERE id = ?1)",
                    [id],
                )?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl SqliteStore {
    pub(super) fn outbox_write(&self, write: OutboxWrite) -> Ticket {
        self.submit(|ack| Write::Outbox {
            write: Box::new(write),
            ack,
        })
    }
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WebhookDelivery, String, String)> {
    Ok((
        WebhookDelivery {
            id: r.get(0)?,
            event_id: r.get(1)?,
            event: WebhookEvent::InterviewCreated,
            interview_id: r.get(3)?,
            state: DeliveryState::Pending,
            attempts: r.get(5)?,
            created_at: r.get(6)?,
            next_attempt_at: r.get(7)?,
            last_attempt_at: r.get(8)?,
            last_status: r.get(9)?,
            last_error: r.get(10)?,
            delivered_at: r.get(11)?,
        },
        r.get(2)?,
        r.get(4)?,
    ))
}

impl OutboxStore for SqliteStore {
    fn add_webhook(&self, endpoint: &NewEndpoint) -> Ticket {
        self.outbox_write(OutboxWrite::AddWebhook(endpoint.clone()))
    }

    fn remove_webhook(&self, id: &str) -> Ticket {
        self.outbox_write(OutboxWrite::RemoveWebhook(id.to_owned()))
    }

    fn webhooks(&self) -> Result<Vec<Endpoint>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, url, events, secret, created_at FROM webhook_endpoints ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, url, events, secret, created_at) = row?;
            Ok(Endpoint {
                id,
                url,
                events: events_from(&events)?,
                secret,
                created_at,
            })
        })
        .collect()
    }

    fn due_deliveries(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<DueDelivery>> {
        let conn = self.reader();
        // Only the head of each (endpoint, interview) chain: later events wait for it.
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.endpoint_id, w.url, w.secret, e.event_id, e.body, d.attempts, d.created_at \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             JOIN webhook_events e ON e.seq = d.event_seq \
             WHERE d.state = 'pending' AND d.next_at <= ?1 \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.state = 'pending' \
                 AND p.endpoint_id = d.endpoint_id AND p.interview_id = d.interview_id AND p.id < d.id) \
             ORDER BY d.next_at, d.id LIMIT ?2",
        )?;
        let wanted = i64::try_from(limit.saturating_add(busy.len())).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![now, wanted], |r| {
            Ok(DueDelivery {
                id: r.get(0)?,
                endpoint_id: r.get(1)?,
                url: r.get(2)?,
                secret: r.get(3)?,
                event_id: r.get(4)?,
                body: r.get(5)?,
                attempts: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?;
        let mut due = Vec::new();
        for row in rows {
            let row = row?;
            if !busy.contains(&row.id) && due.len() < limit {
                due.push(row);
            }
        }
        Ok(due)
    }

    fn record_attempt(&self, id: i64, attempt: &Attempt) -> Ticket {
        self.outbox_write(OutboxWrite::RecordAttempt(id, attempt.clone()))
    }

    fn deliveries(
        &self,
        webhook: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, e.event_id, e.type, d.interview_id, d.state, d.attempts, d.created_at, \
             d.next_at, d.last_at, d.last_status, d.last_error, d.delivered_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq \
             WHERE d.endpoint_id = ?1 AND d.id < ?2 ORDER BY d.id DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![webhook, before.unwrap_or(i64::MAX), limit],
            delivery_row,
        )?;
        rows.map(|row| {
            let (mut delivery, event, state) = row?;
            delivery.event = WebhookEvent::parse(&event)
                .ok_or_else(|| StoreError::Corrupt(format!("webhook event {event}")))?;
            delivery.state = DeliveryState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?;
            Ok(delivery)
        })
        .collect()
    }

    fn redeliver(&self, webhook: &str, delivery: i64, now: i64) -> Ticket {
        self.outbox_write(OutboxWrite::Redeliver(webhook.to_owned(), delivery, now))
    }

    fn queue_mail(&self, mail: &NewMail) -> Ticket {
        self.outbox_write(OutboxWrite::QueueMail(mail.clone()))
    }

    fn due_mail(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<QueuedMail>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, to_addr, subject, body, attempts, created_at FROM mail_outbox \
             WHERE state = 'pending' AND next_at <= ?1 AND body IS NOT NULL ORDER BY next_at, id LIMIT ?2",
        )?;
        let wanted = i64::try_from(limit.saturating_add(busy.len())).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![now, wanted], |r| {
            Ok(QueuedMail {
                id: r.get(0)?,
                to: r.get(1)?,
                subject: r.get(2)?,
                body: r.get(3)?,
                attempts: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?;
        let mut due = Vec::new();
        for row in rows {
            let row = row?;
            if !busy.contains(&row.id) && due.len() < limit {
                due.push(row);
            }
        }
        Ok(due)
    }

    fn record_mail_attempt(&self, id: i64, attempt: &Attempt) -> Ticket {
        self.outbox_write(OutboxWrite::RecordMailAttempt(id, attempt.clone()))
    }

    fn due_callbacks(&self, now: i64, limit: usize, busy: &[i64]) -> Result<Vec<DueCallback>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT c.id, c.partner_interview_id, c.interview_id, t.callback_url, t.callback_key, c.attempts, c.created_at \
             FROM partner_callbacks c JOIN partner_tests t ON t.partner_interview_id = c.partner_interview_id \
             WHERE c.state = 'pending' AND c.next_at <= ?1 AND t.callback_url IS NOT NULL AND t.callback_key IS NOT NULL \
             ORDER BY c.next_at, c.id LIMIT ?2",
        )?;
        let wanted = i64::try_from(limit.saturating_add(busy.len())).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![now, wanted], |r| {
            Ok(DueCallback {
                id: r.get(0)?,
                partner_interview_id: r.get(1)?,
                interview_id: r.get(2)?,
                url: r.get(3)?,
                key: r.get(4)?,
                attempts: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        let mut due = Vec::new();
        for row in rows {
            let row = row?;
            if !busy.contains(&row.id) && due.len() < limit {
                due.push(row);
            }
        }
        Ok(due)
    }

    fn record_callback_attempt(&self, id: i64, attempt: &Attempt) -> Ticket {
        self.outbox_write(OutboxWrite::RecordCallbackAttempt(id, attempt.clone()))
    }
}

/// The body of the event with this id, if it is stored (for tests and the API's docs).
#[cfg(test)]
fn event_body(conn: &Connection, event_id: &str) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT body FROM webhook_events WHERE event_id = ?1",
            [event_id],
            |r| r.get(0),
        )
        .optional()?)
}

#[cfg(test)]
mod tests;
