//! How many websockets each token holds open, with a guard that gives the place back when the
//! connection ends (so no path can forget to).

use crate::error::AppError;
use duet_protocol::{InterviewId, Role};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open websockets per interview and role (each role has one token per interview).
pub struct TokenSockets {
    max: usize,
    open: Mutex<HashMap<(InterviewId, Role), usize>>,
}

/// One open websocket's place; dropping it frees the place.
pub struct SocketGuard {
    owner: Arc<TokenSockets>,
    key: (InterviewId, Role),
}

impl TokenSockets {
    pub fn new(max: usize) -> Arc<TokenSockets> {
        Arc::new(TokenSockets {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<(InterviewId, Role), usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for one more websocket of this token, or refuses with 429.
    pub fn acquire(
        self: &Arc<Self>,
        interview: &InterviewId,
        role: Role,
    ) -> Result<SocketGuard, AppError> {
        let key = (interview.clone(), role);
        let mut open = self.open();
        let count = open.entry(key.clone()).or_default();
        if *count >= self.max {
            return Err(AppError::TooManySockets(format!(
                "this {role} token already has {} websockets open; close some first",
                self.max
            )));
        }
        *count += 1;
        Ok(SocketGuard {
            owner: self.clone(),
            key,
        })
    }

    /// Websockets open for this interview and role.
    pub fn count(&self, interview: &InterviewId, role: Role) -> usize {
        self.open()
            .get(&(interview.clone(), role))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut open = self.owner.open();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
