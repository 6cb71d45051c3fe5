//! [`PeopleStore`] on SQLite: the people tables' reads (on read connections) and writes. The
//! writes go to the writer thread like every other write, but each commits in its own
//! transaction ([`apply`]), outside the group commit of the rooms' records: an expected refusal
//! (an address already taken, a link used twice) rolls back only itself and never fails a
//! batch of keystrokes.

use super::writer::Write;
use super::SqliteStore;
use crate::people::{NewAudit, NewSession, PeopleStore, SessionRecord};
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

/// A write to the people tables.
#[derive(Debug)]
pub(super) enum PeopleWrite {
    AddPerson(Person),
    UpdatePerson(String, PersonUpdate),
    SetPassword(String, String),
    IssueLink(String, TokenHash, i64),
    UseLink(TokenHash, String, i64),
    StartSession(NewSession),
    TouchSession(TokenHash, i64),
    EndSession(TokenHash),
    EndSessionsOf(String),
    AddToken(String, TokenHash, ApiTokenInfo),
    TouchToken(String, i64),
    RevokeToken(String, String),
    SetPanel(InterviewId, Vec<(String, Role)>),
    Audit(NewAudit),
    PruneAudit(i64),
}

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
        let row = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p WHERE id = ?1"
            ))?
            .query_row([id], person_row)
            .optional()?;
        Ok(row.map(person_from).transpose()?.map(|(p, _)| p))
    }

    fn person_by_email(&self, email: &str) -> Result<Option<(Person, Option<String>)>> {
        let row = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p WHERE email = ?1"
            ))?
            .query_row([email], person_row)
            .optional()?;
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
        let row = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS}, l.expires_at FROM password_links l JOIN people p ON p.id = l.person_id \
                 WHERE l.hash = ?1 AND l.expires_at > ?2 AND p.state = 'active'"
            ))?
            .query_row(params![&hash[..], now], |r| Ok((person_row(r)?, r.get(7)?)))
            .optional()?;
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
        let row = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS}, s.created_at, s.last_seen_at, s.expires_at FROM sessions s \
                 JOIN people p ON p.id = s.person_id WHERE s.hash = ?1 AND p.state = 'active'"
            ))?
            .query_row([&hash[..]], |r| {
                Ok((person_row(r)?, r.get(7)?, r.get(8)?, r.get(9)?))
            })
            .optional()?;
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
        let row = self
            .reader()
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS}, t.id, t.name, t.created_at, t.last_used_at FROM api_tokens t \
                 JOIN people p ON p.id = t.person_id WHERE t.hash = ?1 AND p.state = 'active'"
            ))?
            .query_row([&hash[..]], |r| {
                Ok((
                    person_row(r)?,
                    ApiTokenInfo {
                        id: r.get(7)?,
                        name: r.get(8)?,
                        created_at: r.get(9)?,
                        last_used_at: r.get(10)?,
                    },
                ))
            })
            .optional()?;
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
        let role: Option<String> = self
            .reader()
            .prepare_cached("SELECT role FROM panels WHERE interview_id = ?1 AND person_id = ?2")?
            .query_row(params![interview.as_str(), person_id], |r| r.get(0))
            .optional()?;
        role.as_deref().map(role_from).transpose()
    }

    fn seats_of(&self, person_id: &str) -> Result<Vec<(Interview, Role)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT i.id, i.title, i.candidate_name, i.created_at, i.question_id, i.candidate_ref, p.role \
             FROM panels p JOIN interviews i ON i.id = p.interview_id WHERE p.person_id = ?1 \
             ORDER BY i.created_at DESC, i.id",
        )?;
        let rows = stmt.query_map([person_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        rows.map(|r| {
            let (id, title, candidate_name, created_at, question_id, candidate_ref, role) = r?;
            let id = InterviewId::parse(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("bad interview id {id:?}")))?;
            let interview = Interview {
                id,
                title,
                candidate_name,
                created_at,
                question_id,
                candidate_ref,
            };
            Ok((interview, role_from(&role)?))
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

#[cfg(test)]
mod tests {
    use crate::people::{NewAudit, NewSession, PeopleStore};
    use crate::sqlite::testing::{created, record};
    use crate::sqlite::{SqliteConfig, SqliteStore};
    use crate::{InterviewStore, LogStore, StoreError};
    use duet_protocol::{
        ApiTokenInfo, AuditAction, EventKind, Person, PersonState, PersonUpdate, Role, StaffRole,
    };

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap()
    }

    fn person(id: &str, email: &str, role: StaffRole) -> Person {
        Person {
            id: id.into(),
            email: email.into(),
            name: format!("Person {id}"),
            role,
            state: PersonState::Active,
            created_at: 1,
            password_set: false,
        }
    }

    async fn added(store: &SqliteStore, id: &str, email: &str, role: StaffRole) -> Person {
        let p = person(id, email, role);
        store.add_person(&p).await.unwrap().unwrap();
        p
    }

    #[tokio::test]
    async fn an_address_belongs_to_one_person_and_a_refusal_fails_no_keystroke_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let room = created(&store, "busyRoom").await;
        added(&store, "p1", "ada@example.com", StaffRole::Admin).await;
        // Keystrokes and a refused person queue together: the writer may batch them.
        let keys: Vec<_> = (1..=50)
            .map(|seq| store.append(&room, record(seq, EventKind::Edit)))
            .collect();
        let twin = store.add_person(&person("p2", "ada@example.com", StaffRole::Reviewer));
        assert!(matches!(twin.await.unwrap(), Err(StoreError::EmailTaken)));
        for key in keys {
            key.await.unwrap().unwrap();
        }
        assert_eq!(store.read_log(&room, 0).unwrap().len(), 50);
        assert_eq!(store.people().unwrap().len(), 1);
        let (found, password) = store.person_by_email("ada@example.com").unwrap().unwrap();
        assert_eq!((found.role, password), (StaffRole::Admin, None));
    }

    #[tokio::test]
    async fn a_password_link_works_once_and_never_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        added(&store, "p1", "grace@example.com", StaffRole::Interviewer).await;
        let link = [7u8; 32];
        store
            .issue_password_link("p1", &link, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .password_link(&link, 999)
                .unwrap()
                .map(|(p, at)| (p.id, at)),
            Some(("p1".into(), 1_000))
        );
        assert!(
            store.password_link(&link, 1_000).unwrap().is_none(),
            "expired at its time"
        );
        assert!(matches!(
            store
                .use_password_link(&link, "$argon2id$late", 1_000)
                .await
                .unwrap(),
            Err(StoreError::LinkUnusable)
        ));
        store
            .use_password_link(&link, "$argon2id$first", 500)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            store
                .use_password_link(&link, "$argon2id$second", 501)
                .await
                .unwrap(),
            Err(StoreError::LinkUnusable)
        ));
        let (p, hash) = store.person_by_email("grace@example.com").unwrap().unwrap();
        assert!(p.password_set);
        assert_eq!(hash.as_deref(), Some("$argon2id$first"));
        // A new link replaces the old: only the newest works.
        let (old, new) = ([8u8; 32], [9u8; 32]);
        store
            .issue_password_link("p1", &old, 2_000)
            .await
            .unwrap()
            .unwrap();
        store
            .issue_password_link("p1", &new, 2_000)
            .await
            .unwrap()
            .unwrap();
        assert!(store.password_link(&old, 600).unwrap().is_none());
        assert!(store.password_link(&new, 600).unwrap().is_some());
    }

    #[tokio::test]
    async fn disabling_a_person_ends_their_sessions_and_silences_their_tokens_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        added(&store, "p1", "lin@example.com", StaffRole::Interviewer).await;
        let session = NewSession {
            hash: [1; 32],
            person_id: "p1".into(),
            created_at: 10,
            expires_at: 10_000,
        };
        store.start_session(&session).await.unwrap().unwrap();
        let token = ApiTokenInfo {
            id: "t1".into(),
            name: "CI".into(),
            created_at: 10,
            last_used_at: None,
        };
        store
            .add_api_token("p1", &[2; 32], &token)
            .await
            .unwrap()
            .unwrap();
        store.touch_session(&[1; 32], 70).await.unwrap().unwrap();
        assert_eq!(
            store.session(&[1; 32]).unwrap().map(|s| s.last_seen_at),
            Some(70)
        );
        assert!(store.api_token(&[2; 32]).unwrap().is_some());

        let disable = PersonUpdate {
            state: Some(PersonState::Disabled),
            ..PersonUpdate::default()
        };
        store.update_person("p1", &disable).await.unwrap().unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none());
        assert!(store.api_token(&[2; 32]).unwrap().is_none());
        assert!(matches!(
            store.update_person("nobody", &disable).await.unwrap(),
            Err(StoreError::NoSuchPerson)
        ));
        // Enabled again, the old session stays ended; the token (kept) works again.
        let enable = PersonUpdate {
            state: Some(PersonState::Active),
            ..PersonUpdate::default()
        };
        store.update_person("p1", &enable).await.unwrap().unwrap();
        assert!(store.session(&[1; 32]).unwrap().is_none());
        assert!(store.api_token(&[2; 32]).unwrap().is_some());
        assert!(matches!(
            store.revoke_api_token("someone-else", "t1").await.unwrap(),
            Err(StoreError::NoSuchToken)
        ));
        store.revoke_api_token("p1", "t1").await.unwrap().unwrap();
        assert!(store.api_token(&[2; 32]).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_panel_names_people_and_goes_with_its_interview() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let room = created(&store, "panelRoom").await;
        added(&store, "p1", "a@example.com", StaffRole::Interviewer).await;
        added(&store, "p2", "b@example.com", StaffRole::Reviewer).await;
        let seats = vec![
            ("p1".to_owned(), Role::Interviewer),
            ("p2".to_owned(), Role::Reviewer),
        ];
        store.set_panel(&room, &seats).await.unwrap().unwrap();
        assert_eq!(store.seat(&room, "p2").unwrap(), Some(Role::Reviewer));
        assert_eq!(store.seats_of("p1").unwrap().len(), 1);
        // An unknown person changes nothing.
        let bad = vec![
            ("p1".to_owned(), Role::Interviewer),
            ("ghost".to_owned(), Role::Reviewer),
        ];
        assert!(matches!(
            store.set_panel(&room, &bad).await.unwrap(),
            Err(StoreError::NoSuchPerson)
        ));
        assert_eq!(store.panel(&room).unwrap().len(), 2);
        store.erase(&room).await.unwrap().unwrap();
        assert!(store.seats_of("p1").unwrap().is_empty());
        assert!(matches!(
            store.set_panel(&room, &seats).await.unwrap(),
            Err(StoreError::NoSuchInterview)
        ));
    }

    #[tokio::test]
    async fn the_audit_log_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for at in 1..=5 {
            let entry = NewAudit {
                at,
                actor: "cli".into(),
                action: AuditAction::PersonAdded,
                target: Some(format!("p{at}@example.com")),
                from: None,
            };
            store.audit(&entry).await.unwrap().unwrap();
        }
        let first = store.audit_page(None, 2).unwrap();
        assert_eq!(first.iter().map(|e| e.at).collect::<Vec<_>>(), [5, 4]);
        let next = store.audit_page(Some(first[1].id), 10).unwrap();
        assert_eq!(next.iter().map(|e| e.at).collect::<Vec<_>>(), [3, 2, 1]);
    }
}
