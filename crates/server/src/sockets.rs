//! How many websockets each token holds open, with a guard that gives the place back when the
//! connection ends (so no path can forget to), and through which open sockets are told to
//! close, with the reason: an interview's when its tokens were replaced, a person's when they
//! were disabled, signed out everywhere or set a new password, and one session's when it was
//! signed out or expired.
//!
//! What this process does closes the sockets at once, where it happens. What it cannot see
//! happen (a session reaching its idle or absolute end, `duet user disable` in another process,
//! a sign-out on another server sharing the PostgreSQL store) is found by one [`sweep`] task
//! for all sockets: it reads the sessions and people that have sockets open, closes those the
//! next request would refuse, and sleeps until the earliest session's end or [`SWEEP_EVERY`],
//! whichever comes first.

use crate::error::AppError;
use crate::rooms::now_ms;
use crate::session::{Staff, Via};
use duet_protocol::{InterviewId, PersonState, Role};
use duet_store::{Store, TokenHash};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The longest the [`sweep`] goes without reading the store for the open sockets' sessions
/// and people: how late a change made elsewhere (another process or server) closes them.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

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
    /// The session reached its idle or absolute end.
    Expired,
    /// The personal API token the socket opened with was revoked.
    TokenRevoked,
    /// The session is gone from the store for a reason this process did not see (a sign-out
    /// on another server sharing the store).
    Ended,
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
            Revoked::Expired => "your session expired; sign in again",
            Revoked::TokenRevoked => "the API token this opened with was revoked",
            Revoked::Ended => "your session ended; sign in again",
        }
    }
}

/// Open websockets per interview and role (each role has one token per interview).
pub struct TokenSockets {
    max: usize,
    open: Mutex<Open>,
    /// Told when a session gets its first open socket (the sweep learns its end).
    new_session: Notify,
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
    /// Per personal API token (by id) with a socket open: fired when it is revoked.
    tokens: Waiting<String>,
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
    /// The personal API token the socket authenticated with (its id), and its revocation.
    token: Option<(String, Revocation)>,
}

impl SocketGuard {
    /// Resolves, with why, when the socket must close: its token was replaced, its session
    /// signed out or expired, or the person it opened as disabled or signed out everywhere.
    /// When several fired, the interview's reason wins, then the person's (the sweep fires a
    /// disabled person's before it finds their session gone).
    pub async fn revoked(&self) -> Revoked {
        let person = waiting_on(self.person.as_ref().map(|(_, r)| r));
        let session = waiting_on(self.session.as_ref().map(|(_, r)| r));
        let token = waiting_on(self.token.as_ref().map(|(_, r)| r));
        tokio::select! {
            biased;
            why = self.interview.wait() => why,
            why = person => why,
            why = session => why,
            why = token => why,
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
            new_session: Notify::new(),
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
        self.end_session(session, Revoked::SignedOut);
    }

    /// The personal API token `id` was revoked: every socket opened with it is told to close.
    pub fn revoke_token(&self, id: &str) {
        self.open()
            .tokens
            .fire(&id.to_owned(), Revoked::TokenRevoked);
    }

    /// Every socket opened with the session is told to close, saying `why`.
    fn end_session(&self, session: &TokenHash, why: Revoked) {
        self.open().sessions.fire(session, why);
    }

    /// The people and the sessions that have sockets open (what the sweep reads).
    fn watched(&self) -> (Vec<String>, Vec<TokenHash>) {
        let open = self.open();
        (
            open.people.by.keys().cloned().collect(),
            open.sessions.by.keys().copied().collect(),
        )
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
            Some(Via::Session(hash)) => {
                if !open.sessions.by.contains_key(hash) {
                    // Its end may come before the sweep's next wake.
                    self.new_session.notify_one();
                }
                Some((*hash, open.sessions.hold(hash)))
            }
            _ => None,
        };
        let token = match staff.map(|s| &s.via) {
            Some(Via::ApiToken(id)) => Some((id.clone(), open.tokens.hold(id))),
            _ => None,
        };
        Ok(SocketGuard {
            owner: self.clone(),
            key,
            interview: on_interview,
            person,
            session,
            token,
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
        if let Some((id, revocation)) = &self.token {
            open.tokens.release(id, revocation);
        }
    }
}

/// Closes the sockets whose session or person the store no longer lets in, until `shutdown`:
/// one task for every socket, not a timer each. It reads the watched people and sessions,
/// closes a disabled (or removed) person's sockets, an ended session's and an expired one's
/// (ending it in the store too, as a request with it would), then sleeps until the earliest
/// open session's end, [`SWEEP_EVERY`], or a session's first socket, whichever comes first.
pub async fn sweep(
    sockets: Arc<TokenSockets>,
    store: Arc<dyn Store>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let next_end = match sweep_once(&sockets, &store, idle).await {
            Ok(next_end) => next_end,
            Err(error) => {
                tracing::warn!(%error, "session sweep: reading the store failed; trying again");
                None
            }
        };
        let wait = next_end.map_or(SWEEP_EVERY, |at| {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(SWEEP_EVERY)
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = sockets.new_session.notified() => {}
        }
    }
}

/// One pass of [`sweep`]: the earliest end (unix ms) of the sessions still open, if any.
async fn sweep_once(
    sockets: &TokenSockets,
    store: &Arc<dyn Store>,
    idle: Duration,
) -> Result<Option<i64>, AppError> {
    let (people, sessions) = sockets.watched();
    if people.is_empty() && sessions.is_empty() {
        return Ok(None);
    }
    let reader = store.clone();
    let (people, sessions) = crate::api::blocking(move || {
        let people = people
            .into_iter()
            .map(|id| Ok((reader.person(&id)?, id)))
            .collect::<Result<Vec<_>, duet_store::StoreError>>()?;
        let sessions = sessions
            .into_iter()
            .map(|hash| Ok((reader.session(&hash)?, hash)))
            .collect::<Result<Vec<_>, duet_store::StoreError>>()?;
        Ok((people, sessions))
    })
    .await?;
    for (person, id) in people {
        if !person.is_some_and(|p| p.state == PersonState::Active) {
            sockets.revoke_person(&id, Revoked::Disabled);
        }
    }
    let now = now_ms();
    let mut next_end: Option<i64> = None;
    for (session, hash) in sessions {
        let Some(session) = session else {
            // Signed out elsewhere, or its person disabled (whose reason was given above).
            sockets.end_session(&hash, Revoked::Ended);
            continue;
        };
        let ends_at = crate::session::ends_at(&session, idle);
        if now >= ends_at {
            sockets.end_session(&hash, Revoked::Expired);
            drop(store.end_session(&hash));
        } else {
            next_end = Some(next_end.map_or(ends_at, |n| n.min(ends_at)));
        }
    }
    Ok(next_end)
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
    fn revoking_a_personal_api_token_closes_only_the_sockets_opened_with_it() {
        let sockets = TokenSockets::new(10);
        let interview = InterviewId::parse("i1").unwrap_or_else(|| panic!("an id"));
        let with_token = |id: &str| Staff {
            via: Via::ApiToken(id.to_owned()),
            ..staff("grace", 1)
        };
        let script = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&with_token("tok1")))
            .unwrap_or_else(|e| panic!("{e}"));
        let other_script = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&with_token("tok2")))
            .unwrap_or_else(|e| panic!("{e}"));
        let browser = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&staff("grace", 1)))
            .unwrap_or_else(|e| panic!("{e}"));
        sockets.revoke_token("tok1");
        assert_eq!(closed(&script), Some(Revoked::TokenRevoked));
        assert_eq!(closed(&other_script), None);
        assert_eq!(closed(&browser), None);
        drop(script);
        // A socket opened with the same id later waits on a new revocation.
        let again = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&with_token("tok1")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(closed(&again), None);
    }

    #[test]
    fn a_disabled_persons_socket_says_so_even_when_their_session_is_found_gone_too() {
        let sockets = TokenSockets::new(10);
        let interview = InterviewId::parse("i1").unwrap_or_else(|| panic!("an id"));
        let socket = sockets
            .acquire_as(&interview, Role::Interviewer, Some(&staff("grace", 5)))
            .unwrap_or_else(|e| panic!("{e}"));
        // The sweep's order: the person first, then the session it finds gone.
        sockets.revoke_person("grace", Revoked::Disabled);
        sockets.end_session(&[5; 32], Revoked::Ended);
        // Polled afresh each time (an unbiased select would pick either, at random).
        for _ in 0..32 {
            assert_eq!(closed(&socket), Some(Revoked::Disabled));
        }
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
