//! [`PeopleStore`] on SQLite: the people tables' reads (on read connections) and writes. The
//! writes go to the writer thread like every other write, but each commits in its own
//! transaction ([`apply`]), outside the group commit of the rooms' records: an expected refusal
//! (an address already taken, a link used twice) rolls back only itself and never fails a
//! batch of keystrokes.

use super::writer::Write;
use super::SqliteStore;
use crate::people::{NewAudit, NewSession, PeopleStore, PeopleWrite, SessionRecord};
use crate::{Interview, Result, StoreError, Ticket, TokenHash};
use duet_protocol::{
    ApiTokenInfo, AuditAction, AuditEntry, InterviewId, Person, PersonState, PersonUpdate, Role,
    StaffRole,
};
use rusqlite::{params, Connection, OptionalExtension};

/// The people tables (schema version 6).
pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    password_hash TEXT
);
CREATE TABLE IF NOT EXISTS password_links (
    hash BLOB PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    hash BLOB PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_person ON sessions (person_id);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_tokens_by_person ON api_tokens (person_id);
CREATE TABLE IF NOT EXISTS panels (
    interview_id TEXT NOT NULL REFERENCES interviews(id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (interview_id, person_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS panels_by_person ON panels (person_id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    source TEXT
);
";

/// Commits one people write in its own transaction.
pub(super) fn apply(conn: &mut Connection, write: &PeopleWrite) -> Result<()> {
    let txn = conn.transaction()?;
    match write {
        PeopleWrite::AddPerson(p) => {
            let added = txn.execute(
                "INSERT INTO people (id, email, name, role, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![p.id, p.email, p.name, p.role.as_str(), p.state.as_str(), p.created_at],
            )?;
            if added == 0 {
                return Err(StoreError::EmailTaken);
            }
        }
        PeopleWrite::UpdatePerson(id, update) => {
            let changed = txn.execute(
                "UPDATE people SET name = coalesce(?2, name), role = coalesce(?3, role), state = coalesce(?4, state) WHERE id = ?1",
                params![
                    id,
                    update.name,
                    update.role.map(StaffRole::as_str),
                    update.state.map(PersonState::as_str)
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NoSuchPerson);
            }
            if update.state == Some(PersonState::Disabled) {
                txn.execute("DELETE FROM sessions WHERE person_id = ?1", [id])?;
                txn.execute("DELETE FROM password_links WHERE person_id = ?1", [id])?;
            }
        }
        PeopleWrite::SetPassword(id, phc) => {
            let changed = txn.execute(
                "UPDATE people SET password_hash = ?2 WHERE id = ?1",
                params![id, phc],
            )?;
            if changed == 0 {
                return Err(StoreError::NoSuchPerson);
            }
            txn.execute("DELETE FROM sessions WHERE person_id = ?1", [id])?;
        }
        PeopleWrite::IssueLink(id, hash, expires_at) => {
            txn.execute("DELETE FROM password_links WHERE person_id = ?1", [id])?;
            let added = txn.execute(
                "INSERT INTO password_links (hash, person_id, expires_at) SELECT ?1, id, ?3 FROM people WHERE id = ?2",
                params![&hash[..], id, expires_at],
            )?;
            if added == 0 {
                return Err(StoreError::NoSuchPerson);
            }
        }
        PeopleWrite::UseLink(hash, phc, now) => {
            let person: Option<String> = txn
                .query_row(
                    "SELECT l.person_id FROM password_links l JOIN people p ON p.id = l.person_id \
                     WHERE l.hash = ?1 AND l.expires_at > ?2 AND p.state = 'active'",
                    params![&hash[..], now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(person) = person else {
                return Err(StoreError::LinkUnusable);
            };
            txn.execute("DELETE FROM password_links WHERE person_id = ?1", [&person])?;
            txn.execute(
                "UPDATE people SET password_hash = ?2 WHERE id = ?1",
                params![person, phc],
            )?;
            txn.execute("DELETE FROM sessions WHERE person_id = ?1", [&person])?;
        }
        PeopleWrite::StartSession(s) => {
            txn.execute(
                "INSERT INTO sessions (hash, person_id, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?3, ?4)",
                params![&s.hash[..], s.person_id, s.created_at, s.expires_at],
            )?;
        }
        PeopleWrite::TouchSession(hash, at) => {
            txn.execute(
                "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE hash = ?1",
                params![&hash[..], at],
            )?;
        }
        PeopleWrite::EndSession(hash) => {
            txn.execute("DELETE FROM sessions WHERE hash = ?1", [&hash[..]])?;
        }
        PeopleWrite::EndSessionsOf(id) => {
            txn.execute("DELETE FROM sessions WHERE person_id = ?1", [id])?;
        }
        PeopleWrite::AddToken(person, hash, info) => {
            txn.execute(
                "INSERT INTO api_tokens (id, hash, person_id, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![info.id, &hash[..], person, info.name, info.created_at],
            )?;
        }
        PeopleWrite::TouchToken(id, at) => {
            txn.execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
                params![id, at],
            )?;
        }
        PeopleWrite::RevokeToken(person, id) => {
            let gone = txn.execute(
                "DELETE FROM api_tokens WHERE id = ?1 AND person_id = ?2",
                params![id, person],
            )?;
            if gone == 0 {
                return Err(StoreError::NoSuchToken);
            }
        }
        PeopleWrite::SetPanel(interview, seats) => {
            let exists: bool = txn.query_row(
                "SELECT EXISTS(SELECT 1 FROM interviews WHERE id = ?1)",
                [interview.as_str()],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(StoreError::NoSuchInterview);
            }
            txn.execute(
                "DELETE FROM panels WHERE interview_id = ?1",
                [interview.as_str()],
            )?;
            for (person, role) in seats {
                let added = txn.execute(
                    "INSERT OR REPLACE INTO panels (interview_id, person_id, role) SELECT ?1, id, ?3 FROM people WHERE id = ?2",
                    params![interview.as_str(), person, role.as_str()],
                )?;
                if added == 0 {
                    return Err(StoreError::NoSuchPerson);
                }
            }
        }
        PeopleWrite::PruneAudit(before) => {
            txn.execute("DELETE FROM audit WHERE at < ?1", [before])?;
        }
        PeopleWrite::Audit(e) => {
            txn.execute(
                "INSERT INTO audit (at, actor, action, target, source) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.at, e.actor, e.action.as_str(), e.target, e.from],
            )?;
        }
    }
    txn.commit()?;
    Ok(())
}

const PERSON_COLUMNS: &str =
    "p.id, p.email, p.name, p.role, p.state, p.created_at, p.password_hash";

type PersonRow = (String, String, String, String, String, i64, Option<String>);

fn person_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PersonRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn person_from(
    (id, email, name, role, state, created_at, password_hash): PersonRow,
) -> Result<(Person, Option<String>)> {
    let role = StaffRole::parse(&role)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown staff role {role:?}")))?;
    let state = PersonState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown person state {state:?}")))?;
    let person = Person {
        id,
        email,
        name,
        role,
        state,
        created_at,
        password_set: password_hash.is_some(),
    };
    Ok((person, password_hash))
}

fn role_from(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))
}

impl SqliteStore {
    /// The one row `sql` finds with `params`, read by `row`; none when it finds nothing.
    fn one_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        Ok(self
            .reader()
            .prepare_cached(sql)?
            .query_row(params, row)
            .optional()?)
    }

    fn people_write(&self, write: PeopleWrite) -> Ticket {
        self.submit(|ack| Write::People {
            write: Box::new(write),
            ack,
        })
    }
}

impl PeopleStore for SqliteStore {
    fn add_person(&self, person: &Person) -> Ticket {
        self.people_write(PeopleWrite::AddPerson(person.clone()))
    }

    fn update_person(&self, id: &str, update: &PersonUpdate) -> Ticket {
        self.people_write(PeopleWrite::UpdatePerson(id.to_owned(), update.clone()))
    }

    fn set_password(&self, id: &str, password_hash: &str) -> Ticket {
        self.people_write(PeopleWrite::SetPassword(
            id.to_owned(),
            password_hash.to_owned(),
        ))
    }

    fn person(&self, id: &str) -> Result<Option<Person>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM people p WHERE id = ?1");
        let row = self.one_row(&sql, [id], person_row)?;
        Ok(row.map(person_from).transpose()?.map(|(p, _)| p))
    }

    fn person_by_email(&self, email: &str) -> Result<Option<(Person, Option<String>)>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM people p WHERE email = ?1");
        let row = self.one_row(&sql, [email], person_row)?;
        row.map(person_from).transpose()
    }

    fn people(&self) -> Result<Vec<Person>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p ORDER BY email"
        ))?;
        let rows = stmt.query_map([], person_row)?;
        rows.map(|r| Ok(person_from(r?)?.0)).collect()
    }

    fn issue_password_link(&self, person_id: &str, hash: &TokenHash, expires_at: i64) -> Ticket {
        self.people_write(PeopleWrite::IssueLink(
            person_id.to_owned(),
            *hash,
            expires_at,
        ))
    }

    fn password_link(&self, hash: &TokenHash, now: i64) -> Result<Option<(Person, i64)>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS}, l.expires_at FROM password_links l JOIN people p ON p.id = l.person_id \
             WHERE l.hash = ?1 AND l.expires_at > ?2 AND p.state = 'active'"
        );
        let row = self.one_row(&sql, params![&hash[..], now], |r| {
            Ok((person_row(r)?, r.get(7)?))
        })?;
        row.map(|(p, expires_at)| Ok((person_from(p)?.0, expires_at)))
            .transpose()
    }

    fn use_password_link(&self, hash: &TokenHash, password_hash: &str, now: i64) -> Ticket {
        self.people_write(PeopleWrite::UseLink(*hash, password_hash.to_owned(), now))
    }

    fn start_session(&self, session: &NewSession) -> Ticket {
        self.people_write(PeopleWrite::StartSession(session.clone()))
    }

    fn session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS}, s.created_at, s.last_seen_at, s.expires_at FROM sessions s \
             JOIN people p ON p.id = s.person_id WHERE s.hash = ?1 AND p.state = 'active'"
        );
        let row = self.one_row(&sql, [&hash[..]], |r| {
            Ok((person_row(r)?, r.get(7)?, r.get(8)?, r.get(9)?))
        })?;
        row.map(|(p, created_at, last_seen_at, expires_at)| {
            Ok(SessionRecord {
                person: person_from(p)?.0,
                created_at,
                last_seen_at,
                expires_at,
            })
        })
        .transpose()
    }

    fn touch_session(&self, hash: &TokenHash, at: i64) -> Ticket {
        self.people_write(PeopleWrite::TouchSession(*hash, at))
    }

    fn end_session(&self, hash: &TokenHash) -> Ticket {
        self.people_write(PeopleWrite::EndSession(*hash))
    }

    fn end_sessions_of(&self, person_id: &str) -> Ticket {
        self.people_write(PeopleWrite::EndSessionsOf(person_id.to_owned()))
    }

    fn add_api_token(&self, person_id: &str, hash: &TokenHash, info: &ApiTokenInfo) -> Ticket {
        self.people_write(PeopleWrite::AddToken(
            person_id.to_owned(),
            *hash,
            info.clone(),
        ))
    }

    fn api_tokens_of(&self, person_id: &str) -> Result<Vec<ApiTokenInfo>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE person_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([person_id], |r| {
            Ok(ApiTokenInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                last_used_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn api_token(&self, hash: &TokenHash) -> Result<Option<(Person, ApiTokenInfo)>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS}, t.id, t.name, t.created_at, t.last_used_at FROM api_tokens t \
             JOIN people p ON p.id = t.person_id WHERE t.hash = ?1 AND p.state = 'active'"
        );
        let row = self.one_row(&sql, [&hash[..]], |r| {
            Ok((
                person_row(r)?,
                ApiTokenInfo {
                    id: r.get(7)?,
                    name: r.get(8)?,
                    created_at: r.get(9)?,
                    last_used_at: r.get(10)?,
                },
            ))
        })?;
        row.map(|(p, info)| Ok((person_from(p)?.0, info)))
            .transpose()
    }

    fn touch_api_token(&self, token_id: &str, at: i64) -> Ticket {
        self.people_write(PeopleWrite::TouchToken(token_id.to_owned(), at))
    }

    fn revoke_api_token(&self, person_id: &str, token_id: &str) -> Ticket {
        self.people_write(PeopleWrite::RevokeToken(
            person_id.to_owned(),
            token_id.to_owned(),
        ))
    }

    fn set_panel(&self, interview: &InterviewId, seats: &[(String, Role)]) -> Ticket {
        self.people_write(PeopleWrite::SetPanel(interview.clone(), seats.to_vec()))
    }

    fn panel(&self, interview: &InterviewId) -> Result<Vec<(String, Role)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT person_id, role FROM panels WHERE interview_id = ?1 ORDER BY role, person_id",
        )?;
        let rows = stmt.query_map([interview.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (person, role) = r?;
            Ok((person, role_from(&role)?))
        })
        .collect()
    }

    fn seat(&self, interview: &InterviewId, person_id: &str) -> Result<Option<Role>> {
        let role: Option<String> = self.one_row(
            "SELECT role FROM panels WHERE interview_id = ?1 AND person_id = ?2",
            params![interview.as_str(), person_id],
            |r| r.get(0),
        )?;
        role.as_deref().map(role_from).transpose()
    }

    fn seats_of(&self, person_id: &str) -> Result<Vec<(Interview, Role)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {}, p.role FROM panels p JOIN interviews i ON i.id = p.interview_id \
             WHERE p.person_id = ?1 ORDER BY i.created_at DESC, i.id",
            super::reads::interview_columns("i.")
        ))?;
        let rows = stmt.query_map([person_id], |r| {
            Ok((super::reads::to_interview(r)?, r.get::<_, String>(9)?))
        })?;
        rows.map(|r| {
            let (interview, role) = r?;
            Ok((interview?, role_from(&role)?))
        })
        .collect()
    }

    fn audit(&self, entry: &NewAudit) -> Ticket {
        self.people_write(PeopleWrite::Audit(entry.clone()))
    }

    fn prune_audit(&self, before: i64) -> Ticket {
        self.people_write(PeopleWrite::PruneAudit(before))
    }

    fn audit_page(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, actor, action, target, source FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![
                before.unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )?;
        rows.map(|r| {
            let (id, at, actor, action, target, from) = r?;
            let action = AuditAction::parse(&action)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {action:?}")))?;
            Ok(AuditEntry {
                id,
                at,
                actor,
                action,
                target,
                from,
            })
        })
        .collect()
    }
}
