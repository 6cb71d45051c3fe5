//! How many websockets each token holds open, with a guard that gives the place back when the
//! connection ends (so no path can forget to), and through which an interview's open sockets
//! are told their tokens were replaced, and a person's sockets that they were disabled or
//! signed out everywhere.

use crate::error::AppError;
use duet_protocol::{InterviewId, Role};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Open websockets per interview and role (each role has one token per interview).
pub struct TokenSockets {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    per_token: HashMap<(InterviewId, Role), usize>,
    /// Per interview with a socket open: the token cancelled when its tokens are replaced, and
    /// how many sockets hold it.
    revoked: HashMap<InterviewId, (CancellationToken, usize)>,
    /// Per staff member with a socket open (by session or personal token): the token cancelled
    /// when they are disabled or signed out everywhere, and how many sockets hold it.
    people: HashMap<String, (CancellationToken, usize)>,
}

/// One open websocket's place; dropping it frees the place.
pub struct SocketGuard {
    owner: Arc<TokenSockets>,
    key: (InterviewId, Role),
    revoked: CancellationToken,
    /// The staff member the socket authenticated as, and their revocation.
    person: Option<(String, CancellationToken)>,
}

impl SocketGuard {
    /// Resolves when the token this socket opened with has been replaced, or the person it
    /// opened as was disabled or signed out everywhere: close the socket.
    pub async fn revoked(&self) {
        match &self.person {
            Some((_, person)) => {
                tokio::select! {
                    _ = self.revoked.cancelled() => {}
                    _ = person.cancelled() => {}
                }
            }
            None => self.revoked.cancelled().await,
        }
    }
}

/// The close reason a socket on a replaced token is given.
pub const REVOKED_REASON: &str = "this link was replaced by a new one; ask for the new link";

impl TokenSockets {
    pub fn new(max: usize) -> Arc<TokenSockets> {
        Arc::new(TokenSockets {
            max: max.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The interview's tokens were replaced: every socket open on them is told to close.
    pub fn revoke(&self, interview: &InterviewId) {
        if let Some((revoked, _)) = self.open().revoked.remove(interview) {
            revoked.cancel();
        }
    }

    /// The person was disabled or signed out everywhere: every socket they opened is told to
    /// close.
    pub fn revoke_person(&self, person: &str) {
        if let Some((revoked, _)) = self.open().people.remove(person) {
            revoked.cancel();
        }
    }

    /// Takes a place for one more websocket of this token, or refuses with 429.
    pub fn acquire(
        self: &Arc<Self>,
        interview: &InterviewId,
        role: Role,
    ) -> Result<SocketGuard, AppError> {
        self.acquire_as(interview, role, None)
    }

    /// [`TokenSockets::acquire`] for a socket opened by a staff member (`person`), which also
    /// closes when [`TokenSockets::revoke_person`] names them.
    pub fn acquire_as(
        self: &Arc<Self>,
        interview: &InterviewId,
        role: Role,
        person: Option<&str>,
    ) -> Result<SocketGuard, AppError> {
        let key = (interview.clone(), role);
        let mut open = self.open();
        let count = open.per_token.entry(key.clone()).or_default();
        if *count >= self.max {
            return Err(AppError::TooManySockets(format!(
                "this {role} token already has {} websockets open; close some first",
                self.max
            )));
        }
        *count += 1;
        let (revoked, holders) = open.revoked.entry(interview.clone()).or_default();
        *holders += 1;
        let revoked = revoked.child_token();
        let person = person.map(|id| {
            let (token, holders) = open.people.entry(id.to_owned()).or_default();
            *holders += 1;
            (id.to_owned(), token.child_token())
        });
        Ok(SocketGuard {
            owner: self.clone(),
            key,
            revoked,
            person,
        })
    }

    /// Websockets open for this interview and role.
    pub fn count(&self, interview: &InterviewId, role: Role) -> usize {
        self.open()
            .per_token
            .get(&(interview.clone(), role))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut open = self.owner.open();
        if let Some(count) = open.per_token.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_token.remove(&self.key);
            }
        }
        // A revoked socket's entry is gone already (a new one may belong to newer sockets).
        let entry = open.revoked.get_mut(&self.key.0);
        if let Some((_, holders)) = entry.filter(|_| !self.revoked.is_cancelled()) {
            *holders = holders.saturating_sub(1);
            if *holders == 0 {
                open.revoked.remove(&self.key.0);
            }
        }
        if let Some((id, revoked)) = &self.person {
            let entry = open.people.get_mut(id);
            if let Some((_, holders)) = entry.filter(|_| !revoked.is_cancelled()) {
                *holders = holders.saturating_sub(1);
                if *holders == 0 {
                    open.people.remove(id);
                }
            }
        }
    }
}
