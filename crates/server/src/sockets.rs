//! How many websockets each token holds open, with a guard that gives the place back when the
//! connection ends (so no path can forget to), and through which open sockets are told to
//! close, with the reason: an interview's when its tokens were replaced, a person's when they
//! were disabled, signed out everywhere or set a new password, and one session's when it was
//! signed out.

use crate::error::AppError;
use crate::session::{Staff, Via};
use duet_protocol::{InterviewId, Role};
use duet_store::TokenHash;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use tokio_util::sync::CancellationToken;

/// Why an open socket is told to close (its close frame is 1008 with [`Revoked::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The interview's tokens were replaced.
    LinkReplaced,
    /// The session the socket opened with was signed out.
    SignedOut,
    /// The person signed out everywhere.
    SignedOutEverywhere,
    /// An admin disabled the person.
    Disabled,
    /// The person set a new password (their sessions end).
    PasswordSet,
}

impl Revoked {
    /// The close frame's reason (a websocket close reason holds at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Revoked::LinkReplaced => "this link was replaced by a new one; ask for the new link",
            Revoked::SignedOut => "you signed out; sign in again",
            Revoked::SignedOutEverywhere => "you signed out everywhere; sign in again",
            Revoked::Disabled => "your account was disabled",
            Revoked::PasswordSet => "your password was set; sign in again",
        }
    }
}

/// Open websockets per interview and role (each role has one token per interview).
pub struct TokenSockets {
    max: usize,
    open: Mutex<Open>,
}

/// One cause's signal: cancelled when it fires, with why.
#[derive(Clone, Default)]
struct Revocation {
    token: CancellationToken,
    why: Arc<OnceLock<Revoked>>,
}

impl Revocation {
    fn fire(&self, why: Revoked) {
        let _ = self.why.set(why);
        self.token.cancel();
    }

    fn fired(&self) -> bool {
        self.token.is_cancelled()
    }

    async fn wait(&self) -> Revoked {
        self.token.cancelled().await;
        // Set before the token is cancelled, so always there once it is.
        self.why.get().copied().unwrap_or(Revoked::LinkReplaced)
    }
}

/// The sockets waiting on one key's revocation: taken out of the map when it fires (a socket
/// opened afterwards waits on a new one).
struct Waiting<K> {
    by: HashMap<K, (Revocation, usize)>,
}

impl<K: Hash + Eq + Clone> Waiting<K> {
    fn hold(&mut self, key: &K) -> Revocation {
        let (revocation, holders) = self.by.entry(key.clone()).or_default();
        *holders += 1;
        revocation.clone()
    }

    fn fire(&mut self, key: &K, why: Revoked) {
        if let Some((revocation, _)) = self.by.remove(key) {
            revocation.fire(why);
        }
    }

    /// One holder of `key` is gone; `revocation` is the one it held (a fired one's entry is
    /// gone already, and a new entry under the same key belongs to newer sockets).
    fn release(&mut self, key: &K, revocation: &Revocation) {
        if revocation.fired() {
            return;
        }
        if let Some((_, holders)) = self.by.get_mut(key) {
            *holders = holders.saturating_sub(1);
            if *holders == 0 {
                self.by.remove(key);
            }
        }
    }
}

impl<K> Default for Waiting<K> {
    fn default() -> Self {
        Waiting { by: HashMap::new() }
    }
}

#[derive(Default)]
struct Open {
    per_token: HashMap<(InterviewId, Role), usize>,
    /// Per interview with a socket open: fired when its tokens are replaced.
    interviews: Waiting<InterviewId>,
    /// Per staff member with a socket open (by session or personal token): fired when they are
    /// disabled, sign out everywhere or set a password.
    people: Waiting<String>,
    /// Per session with a socket open: fired when that session is signed out.
    sessions: Waiting<TokenHash>,
}

/// One open websocket's place; dropping it frees the place.
pub struct SocketGuard {
    owner: Arc<TokenSockets>,
    key: (InterviewId, Role),
    interview: Revocation,
    /// The staff member the socket authenticated as, and their revocation.
    person: Option<(String, Revocation)>,
    /// The session the socket authenticated with, and its revocation.
    session: Option<(TokenHash, Revocation)>,
}

impl SocketGuard {
    /// Resolves, with why, when the socket must close: its token was replaced, its session
    /// signed out, or the person it opened as disabled or signed out everywhere.
    pub async fn revoked(&self) -> Revoked {
        let person = waiting_on(self.person.as_ref().map(|(_, r)| r));
        let session = waiting_on(self.session.as_ref().map(|(_, r)| r));
        tokio::select! {
            why = self.interview.wait() => why,
            why = person => why,
            why = session => why,
        }
    }
}

/// Resolves when `revocation` fires; never without one.
async fn waiting_on(revocation: Option<&Revocation>) -> Revoked {
    match revocation {
        Some(revocation) => revocation.wait().await,
        None => std::future::pending().await,
    }
}

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
        self.open()
            .interviews
            .fire(interview, Revoked::LinkReplaced);
    }

    /// The person was disabled, signed out everywhere or set a password (`why`): every socket
    /// they opened is told to close.
    pub fn revoke_person(&self, person: &str, why: Revoked) {
        self.open().people.fire(&person.to_owned(), why);
    }

    /// The session was signed out: every socket opened with it is told to close.
    pub fn revoke_session(&self, session: &TokenHash) {
        self.open().sessions.fire(session, Revoked::SignedOut);
    }

    /// Takes a place for one more websocket of this token, or refuses with 429.
    pub fn acquire(
        self: &Arc<Self>,
        interview: &InterviewId,
        role: Role,
    ) -> Result<SocketGuard, AppError> {
        self.acquire_as(interview, role, None)
    }

    /// [`TokenSockets::acquire`] for a socket opened by a staff member, which also closes when
    /// [`TokenSockets::revoke_person`] names them or, opened with a session cookie,
    /// [`TokenSockets::revoke_session`] names that session.
    pub fn acquire_as(
        self: &Arc<Self>,
        interview: &InterviewId,
        role: Role,
        staff: Option<&Staff>,
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
        let on_interview = open.interviews.hold(interview);
        let person = staff.map(|s| (s.person.id.clone(), open.people.hold(&s.person.id)));
        let session = match staff.map(|s| &s.via) {
            Some(Via::Session(hash)) => Some((*hash, open.sessions.hold(hash))),
            _ => None,
        };
        Ok(SocketGuard {
            owner: self.clone(),
            key,
            interview: on_interview,
            person,
            session,
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
        open.interviews.release(&self.key.0, &self.interview);
        if let Some((id, revocation)) = &self.person {
            open.people.release(id, revocation);
        }
        if let Some((hash, revocation)) = &self.session {
            open.sessions.release(hash, revocation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_protocol::{Person, PersonState, StaffRole};

    fn staff(id: &str, session: u8) -> Staff {
        Staff {
            person: Person {
                id: id.to_owned(),
                email: format!("{id}@example.com"),
                name: id.to_owned(),
                role: StaffRole::Interviewer,
                state: PersonState::Active,
                created_at: 0,
                password_set: true,
            },
            via: Via::Session([session; 32]),
        }
    }

    fn closed(guard: &SocketGuard) -> Option<Revoked> {
        use std::future::Future;
        let mut waiting = std::pin::pin!(guard.revoked());
        let waker = std::task::Waker::noop();
        match waiting
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(why) => Some(why),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn signing_out_one_session_closes_only_that_sessions_sockets() {
        let sockets = TokenSockets::new(10);
        let interview = InterviewId::parse("i1").unwrap_or_else(|| panic!("an id"));
        let laptop = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&staff("grace", 1)))
            .unwrap_or_else(|e| panic!("{e}"));
        let phone = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&staff("grace", 2)))
            .unwrap_or_else(|e| panic!("{e}"));
        let link = sockets
            .acquire(&interview, Role::Interviewer)
            .unwrap_or_else(|e| panic!("{e}"));
        sockets.revoke_session(&[1; 32]);
        assert_eq!(closed(&laptop), Some(Revoked::SignedOut));
        assert_eq!(closed(&phone), None);
        assert_eq!(closed(&link), None);

        sockets.revoke_person("grace", Revoked::Disabled);
        assert_eq!(closed(&phone), Some(Revoked::Disabled));
        assert_eq!(closed(&link), None);
        sockets.revoke(&interview);
        assert_eq!(closed(&link), Some(Revoked::LinkReplaced));
    }

    #[test]
    fn a_socket_opened_after_a_revocation_waits_on_a_new_one_and_nothing_is_left_behind() {
        let sockets = TokenSockets::new(10);
        let interview = InterviewId::parse("i1").unwrap_or_else(|| panic!("an id"));
        let old = sockets
            .acquire_as(&interview, Role::Reviewer, Some(&staff("lin", 3)))
            .unwrap_or_else(|e| panic!("{e}"));
        sockets.revoke_person("lin", Revoked::SignedOutEverywhere);
        let new = sockets
            .acquire_as(&interview, Role::Reviewer, Some(&staff("lin", 4)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(closed(&old), Some(Revoked::SignedOutEverywhere));
        assert_eq!(closed(&new), None, "a new sign-in's socket stays open");
        drop(old);
        drop(new);
        let open = sockets.open();
        assert!(open.per_token.is_empty());
        assert!(open.interviews.by.is_empty());
        assert!(open.people.by.is_empty());
        assert!(open.sessions.by.is_empty());
    }
}
