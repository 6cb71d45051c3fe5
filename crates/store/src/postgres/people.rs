//! [`PeopleStore`] on Postgres: the people tables' writes, each in its own transaction on the
//! writer's connection ([`apply`], outside the group commit of the rooms' records, as on
//! SQLite), and their reads on pooled connections.

use super::reads::{to_interview, INTERVIEW_COLUMNS};
use super::PgStore;
use crate::people::{NewAudit, NewSession, PeopleStore, PeopleWrite, SessionRecord};
use crate::{Interview, Result, StoreError, Ticket, TokenHash};
use deadpool_postgres::Object;
use duet_protocol::{
    ApiTokenInfo, AuditAction, AuditEntry, InterviewId, Person, PersonState, PersonUpdate, Role,
    StaffRole,
};
use tokio_postgres::{Client, Row};

/// One people write, in a transaction of its own that the writer commits (an expected refusal
/// rolls back only it).
pub(super) async fn apply(txn: &Client, write: &PeopleWrite) -> Result<()> {
    match write {
        PeopleWrite::AddPerson(p) => {
            let added = txn
                .execute(
                    "INSERT INTO people (id, email, name, role, state, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&p.id, &p.email, &p.name, &p.role.as_str(), &p.state.as_str(), &p.created_at],
                )
                .await?;
            if added == 0 {
                return Err(StoreError::EmailTaken);
            }
        }
        PeopleWrite::UpdatePerson(id, update) => {
            let changed = txn
                .execute(
                    "UPDATE people SET name = coalesce($2, name), role = coalesce($3, role), state = coalesce($4, state) WHERE id = $1",
                    &[
                        id,
                        &update.name,
                        &update.role.map(StaffRole::as_str),
                        &update.state.map(PersonState::as_str),
                    ],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NoSuchPerson);
            }
            if update.state == Some(PersonState::Disabled) {
                txn.execute("DELETE FROM sessions WHERE person_id = $1", &[id])
                    .await?;
                txn.execute("DELETE FROM password_links WHERE person_id = $1", &[id])
                    .await?;
            }
        }
        PeopleWrite::SetPassword(id, phc) => {
            let changed = txn
                .execute(
                    "UPDATE people SET password_hash = $2 WHERE id = $1",
                    &[id, phc],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NoSuchPerson);
            }
            txn.execute("DELETE FROM sessions WHERE person_id = $1", &[id])
                .await?;
        }
        PeopleWrite::IssueLink(id, hash, expires_at) => {
            txn.execute("DELETE FROM password_links WHERE person_id = $1", &[id])
                .await?;
            let added = txn
                .execute(
                    "INSERT INTO password_links (hash, person_id, expires_at) SELECT $1, id, $3 FROM people WHERE id = $2",
                    &[&&hash[..], id, expires_at],
                )
                .await?;
            if added == 0 {
                return Err(StoreError::NoSuchPerson);
            }
        }
        PeopleWrite::UseLink(hash, phc, now) => {
            // The link's row is locked: two uses at once find it once.
            let person = txn
                .query_opt(
                    "SELECT l.person_id FROM password_links l JOIN people p ON p.id = l.person_id \
                     WHERE l.hash = $1 AND l.expires_at > $2 AND p.state = 'active' FOR UPDATE OF l",
                    &[&&hash[..], now],
                )
                .await?;
            let Some(person) = person else {
                return Err(StoreError::LinkUnusable);
            };
            let person: String = person.try_get(0)?;
            txn.execute(
                "DELETE FROM password_links WHERE person_id = $1",
                &[&person],
            )
            .await?;
            txn.execute(
                "UPDATE people SET password_hash = $2 WHERE id = $1",
                &[&person, phc],
            )
            .await?;
            txn.execute("DELETE FROM sessions WHERE person_id = $1", &[&person])
                .await?;
        }
        PeopleWrite::StartSession(s) => {
            txn.execute(
                "INSERT INTO sessions (hash, person_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)",
                &[&&s.hash[..], &s.person_id, &s.created_at, &s.expires_at],
            )
            .await?;
        }
        PeopleWrite::TouchSession(hash, at) => {
            txn.execute(
                "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE hash = $1",
                &[&&hash[..], at],
            )
            .await?;
        }
        PeopleWrite::EndSession(hash) => {
            txn.execute("DELETE FROM sessions WHERE hash = $1", &[&&hash[..]])
                .await?;
        }
        PeopleWrite::EndSessionsOf(id) => {
            txn.execute("DELETE FROM sessions WHERE person_id = $1", &[id])
                .await?;
        }
        PeopleWrite::AddToken(person, hash, info) => {
            txn.execute(
                "INSERT INTO api_tokens (id, hash, person_id, name, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&info.id, &&hash[..], person, &info.name, &info.created_at],
            )
            .await?;
        }
        PeopleWrite::TouchToken(id, at) => {
            txn.execute(
                "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1",
                &[id, at],
            )
            .await?;
        }
        PeopleWrite::RevokeToken(person, id) => {
            let gone = txn
                .execute(
                    "DELETE FROM api_tokens WHERE id = $1 AND person_id = $2",
                    &[id, person],
                )
                .await?;
            if gone == 0 {
                return Err(StoreError::NoSuchToken);
            }
        }
        PeopleWrite::SetPanel(interview, seats) => {
            let exists = txn
                .query_opt(
                    "SELECT 1 FROM interviews WHERE id = $1 FOR KEY SHARE",
                    &[&interview.as_str()],
                )
                .await?;
            if exists.is_none() {
                return Err(StoreError::NoSuchInterview);
            }
            txn.execute(
                "DELETE FROM panels WHERE interview_id = $1",
                &[&interview.as_str()],
            )
            .await?;
            for (person, role) in seats {
                let added = txn
                    .execute(
                        "INSERT INTO panels (interview_id, person_id, role) SELECT $1, id, $3 FROM people WHERE id = $2 \
                         ON CONFLICT (interview_id, person_id) DO UPDATE SET role = excluded.role",
                        &[&interview.as_str(), person, &role.as_str()],
                    )
                    .await?;
                if added == 0 {
                    return Err(StoreError::NoSuchPerson);
                }
            }
        }
        PeopleWrite::PruneAudit(before) => {
            txn.execute("DELETE FROM audit WHERE at < $1", &[before])
                .await?;
        }
        PeopleWrite::Audit(e) => {
            txn.execute(
                "INSERT INTO audit (at, actor, action, target, source) VALUES ($1, $2, $3, $4, $5)",
                &[&e.at, &e.actor, &e.action.as_str(), &e.target, &e.from],
            )
            .await?;
        }
    }
    Ok(())
}

const PERSON_COLUMNS: &str =
    "p.id, p.email, p.name, p.role, p.state, p.created_at, p.password_hash";

/// A person and their password hash from the first seven columns ([`PERSON_COLUMNS`]).
fn person_from(row: &Row) -> Result<(Person, Option<String>)> {
    let role: &str = row.try_get(3)?;
    let state: &str = row.try_get(4)?;
    let role = StaffRole::parse(role)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown staff role {role:?}")))?;
    let state = PersonState::parse(state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown person state {state:?}")))?;
    let password_hash: Option<String> = row.try_get(6)?;
    let person = Person {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        role,
        state,
        created_at: row.try_get(5)?,
        password_set: password_hash.is_some(),
    };
    Ok((person, password_hash))
}

fn role_from(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))
}

fn token_info(row: &Row, first: usize) -> Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.try_get(first)?,
        name: row.try_get(first + 1)?,
        created_at: row.try_get(first + 2)?,
        last_used_at: row.try_get(first + 3)?,
    })
}

async fn person(c: Object, id: String) -> Result<Option<Person>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p WHERE p.id = $1"
        ))
        .await?;
    let row = c.query_opt(&stmt, &[&id]).await?;
    Ok(row.as_ref().map(person_from).transpose()?.map(|(p, _)| p))
}

async fn person_by_email(c: Object, email: String) -> Result<Option<(Person, Option<String>)>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p WHERE p.email = $1"
        ))
        .await?;
    c.query_opt(&stmt, &[&email])
        .await?
        .as_ref()
        .map(person_from)
        .transpose()
}

async fn people(c: Object) -> Result<Vec<Person>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p ORDER BY p.email"
        ))
        .await?;
    c.query(&stmt, &[])
        .await?
        .iter()
        .map(|r| Ok(person_from(r)?.0))
        .collect()
}

async fn password_link(c: Object, hash: TokenHash, now: i64) -> Result<Option<(Person, i64)>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS}, l.expires_at FROM password_links l JOIN people p ON p.id = l.person_id \
             WHERE l.hash = $1 AND l.expires_at > $2 AND p.state = 'active'"
        ))
        .await?;
    c.query_opt(&stmt, &[&&hash[..], &now])
        .await?
        .map(|r| Ok((person_from(&r)?.0, r.try_get(7)?)))
        .transpose()
}

async fn session(c: Object, hash: TokenHash) -> Result<Option<SessionRecord>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS}, s.created_at, s.last_seen_at, s.expires_at FROM sessions s \
             JOIN people p ON p.id = s.person_id WHERE s.hash = $1 AND p.state = 'active'"
        ))
        .await?;
    c.query_opt(&stmt, &[&&hash[..]])
        .await?
        .map(|r| {
            Ok(SessionRecord {
                person: person_from(&r)?.0,
                created_at: r.try_get(7)?,
                last_seen_at: r.try_get(8)?,
                expires_at: r.try_get(9)?,
            })
        })
        .transpose()
}

async fn api_tokens_of(c: Object, person_id: String) -> Result<Vec<ApiTokenInfo>> {
    let stmt = c
        .prepare_cached(
            "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE person_id = $1 ORDER BY created_at, id",
        )
        .await?;
    c.query(&stmt, &[&person_id])
        .await?
        .iter()
        .map(|r| token_info(r, 0))
        .collect()
}

async fn api_token(c: Object, hash: TokenHash) -> Result<Option<(Person, ApiTokenInfo)>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS}, t.id, t.name, t.created_at, t.last_used_at FROM api_tokens t \
             JOIN people p ON p.id = t.person_id WHERE t.hash = $1 AND p.state = 'active'"
        ))
        .await?;
    c.query_opt(&stmt, &[&&hash[..]])
        .await?
        .map(|r| Ok((person_from(&r)?.0, token_info(&r, 7)?)))
        .transpose()
}

async fn panel(c: Object, interview: InterviewId) -> Result<Vec<(String, Role)>> {
    let stmt = c
        .prepare_cached(
            "SELECT person_id, role FROM panels WHERE interview_id = $1 ORDER BY role, person_id",
        )
        .await?;
    c.query(&stmt, &[&interview.as_str()])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, role_from(r.try_get(1)?)?)))
        .collect()
}

async fn seat(c: Object, interview: InterviewId, person_id: String) -> Result<Option<Role>> {
    let stmt = c
        .prepare_cached("SELECT role FROM panels WHERE interview_id = $1 AND person_id = $2")
        .await?;
    c.query_opt(&stmt, &[&interview.as_str(), &person_id])
        .await?
        .map(|r| role_from(r.try_get(0)?))
        .transpose()
}

async fn seats_of(c: Object, person_id: String) -> Result<Vec<(Interview, Role)>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {INTERVIEW_COLUMNS}, p.role FROM panels p JOIN interviews i ON i.id = p.interview_id \
             WHERE p.person_id = $1 ORDER BY i.created_at DESC, i.id"
        ))
        .await?;
    c.query(&stmt, &[&person_id])
        .await?
        .iter()
        .map(|r| Ok((to_interview(r)?, role_from(r.try_get(9)?)?)))
        .collect()
}

async fn audit_page(c: Object, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
    let stmt = c
        .prepare_cached(
            "SELECT id, at, actor, action, target, source FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    c.query(&stmt, &[&before.unwrap_or(i64::MAX), &limit])
        .await?
        .iter()
        .map(|r| {
            let action: &str = r.try_get(3)?;
            let action = AuditAction::parse(action)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {action:?}")))?;
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                actor: r.try_get(2)?,
                action,
                target: r.try_get(4)?,
                from: r.try_get(5)?,
            })
        })
        .collect()
}

impl PeopleStore for PgStore {
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
        let id = id.to_owned();
        self.read(move |c| person(c, id))
    }

    fn person_by_email(&self, email: &str) -> Result<Option<(Person, Option<String>)>> {
        let email = email.to_owned();
        self.read(move |c| person_by_email(c, email))
    }

    fn people(&self) -> Result<Vec<Person>> {
        self.read(people)
    }

    fn issue_password_link(&self, person_id: &str, hash: &TokenHash, expires_at: i64) -> Ticket {
        self.people_write(PeopleWrite::IssueLink(
            person_id.to_owned(),
            *hash,
            expires_at,
        ))
    }

    fn password_link(&self, hash: &TokenHash, now: i64) -> Result<Option<(Person, i64)>> {
        let hash = *hash;
        self.read(move |c| password_link(c, hash, now))
    }

    fn use_password_link(&self, hash: &TokenHash, password_hash: &str, now: i64) -> Ticket {
        self.people_write(PeopleWrite::UseLink(*hash, password_hash.to_owned(), now))
    }

    fn start_session(&self, session: &NewSession) -> Ticket {
        self.people_write(PeopleWrite::StartSession(session.clone()))
    }

    fn session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>> {
        let hash = *hash;
        self.read(move |c| session(c, hash))
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
        let person_id = person_id.to_owned();
        self.read(move |c| api_tokens_of(c, person_id))
    }

    fn api_token(&self, hash: &TokenHash) -> Result<Option<(Person, ApiTokenInfo)>> {
        let hash = *hash;
        self.read(move |c| api_token(c, hash))
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
        let interview = interview.clone();
        self.read(move |c| panel(c, interview))
    }

    fn seat(&self, interview: &InterviewId, person_id: &str) -> Result<Option<Role>> {
        let (interview, person_id) = (interview.clone(), person_id.to_owned());
        self.read(move |c| seat(c, interview, person_id))
    }

    fn seats_of(&self, person_id: &str) -> Result<Vec<(Interview, Role)>> {
        let person_id = person_id.to_owned();
        self.read(move |c| seats_of(c, person_id))
    }

    fn audit(&self, entry: &NewAudit) -> Ticket {
        self.people_write(PeopleWrite::Audit(entry.clone()))
    }

    fn prune_audit(&self, before: i64) -> Ticket {
        self.people_write(PeopleWrite::PruneAudit(before))
    }

    fn audit_page(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(move |c| audit_page(c, before, limit))
    }
}
