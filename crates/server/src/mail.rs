//! Mail through the team's SMTP server (lettre): an invitation's set-password link, a
//! take-home's link to its candidate. A mail is queued in the store's outbox first
//! ([`queue`]) and sent by [`run`], which retries a failure with the webhooks' backoff until
//! the give-up age, so a mail server that is down for a while loses nothing.

use crate::api::written;
use crate::config::{MailArgs, WebhookArgs};
use crate::error::AppError;
use crate::rooms::now_ms;
use crate::AppState;
use anyhow::Context;
use duet_store::outbox::{Attempt, NewMail, Next, QueuedMail};
use duet_store::Store;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends queued mail through the configured server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer the flags describe; `None` without `--smtp-url`.
    pub fn from_args(args: &MailArgs) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &args.smtp_url else {
            return Ok(None);
        };
        let from = args
            .from
            .as_deref()
            .context("--smtp-url needs --mail-from (the From address of Duet's mail)")?;
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("--mail-from {from:?} is not an address"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url.0)
            .context("--smtp-url is not a usable SMTP URL")?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Some(Mailer { transport, from }))
    }

    async fn send(&self, mail: &QueuedMail) -> Result<(), String> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", mail.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused or failed: {e}"))
    }
}

/// Whether the server sends mail (an SMTP server is configured).
pub fn enabled(state: &AppState) -> bool {
    state.config.mail.smtp_url.is_some()
}

/// Checks an address a mail is to go to: 400 when it is not one.
pub fn checked_address(to: &str) -> Result<String, AppError> {
    to.trim()
        .parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|e| AppError::BadRequest(format!("{to:?} is not an email address: {e}")))
}

/// Queues a mail to `to` in the outbox, when the server sends mail; answers whether it did.
/// A mail about an interview (`about`: a candidate's link) is erased with it.
pub async fn queue(
    state: &AppState,
    about: Option<&duet_protocol::InterviewId>,
    to: &str,
    subject: String,
    body: String,
) -> Result<bool, AppError> {
    if !enabled(state) {
        return Ok(false);
    }
    let mail = NewMail {
        interview_id: about.map(|id| id.as_str().to_owned()),
        to: checked_address(to)?,
        subject,
        body,
        created_at: now_ms(),
    };
    written(state.store.queue_mail(&mail)).await?;
    Ok(true)
}

/// Sends due mail, one at a time, until `shutdown`; each attempt is recorded, a failure
/// retried with the webhooks' backoff until the give-up age.
pub async fn run(
    store: Arc<dyn Store>,
    mailer: Mailer,
    retries: WebhookArgs,
    shutdown: CancellationToken,
) {
    loop {
        let reader = store.clone();
        let due = tokio::task::spawn_blocking(move || reader.due_mail(now_ms(), 16, &[])).await;
        match due {
            Ok(Ok(due)) => {
                for mail in due {
                    let sent = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        sent = mailer.send(&mail) => sent,
                    };
                    let at = now_ms();
                    let attempt = match sent {
                        Ok(()) => {
                            tracing::info!(mail = mail.id, "mail: sent");
                            Attempt {
                                at,
                                status: None,
                                error: None,
                                next: Next::Delivered,
                            }
                        }
                        Err(error) => {
                            let next = crate::webhooks::next_after(
                                &retries,
                                mail.attempts + 1,
                                mail.created_at,
                                at,
                            );
                            tracing::warn!(mail = mail.id, %error, ?next, "mail: not sent");
                            Attempt {
                                at,
                                status: None,
                                error: Some(error),
                                next,
                            }
                        }
                    };
                    if let Ok(Err(e)) = store.record_mail_attempt(mail.id, &attempt).await {
                        tracing::error!(error = %e, mail = mail.id, "mail: could not record an attempt");
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "mail: could not read the outbox"),
            Err(e) => tracing::error!(error = %e, "mail: the outbox read failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retries.poll()) => {}
        }
    }
}

/// Mails a new person their invitation: the one-time link to set a password. A failure to
/// queue it is logged (the admin still has the link from the answer).
pub async fn invitation(state: &AppState, link: &duet_protocol::PasswordLink) {
    let hours = state.sessions.settings().password_link().as_secs() / 3_600;
    let body = format!(
        "Hello {},\n\nYou have been invited to Duet, the team's pair-programming interview server.\n\
         Set your password here (the link works once, for {hours} hours):\n\n{}\n",
        link.person.name, link.link
    );
    let queued = queue(
        state,
        None,
        &link.person.email,
        "Your Duet account".into(),
        body,
    )
    .await;
    if let Err(e) = queued {
        tracing::error!(error = %e, "mail: could not queue an invitation");
    }
}

/// The mail that gives a candidate their link: a take-home's (with its time limit and that
/// the clock starts only when they press Start) or a live interview's.
pub fn candidate_link(interview: &duet_store::Interview, url: &str) -> (String, String) {
    let name = &interview.candidate_name;
    match interview.time_limit_minutes {
        Some(minutes) if interview.mode == duet_protocol::InterviewMode::TakeHome => (
            format!("Your take-home: {}", interview.title),
            format!(
                "Hello {name},\n\nHere is your take-home exercise, \"{}\". You have {minutes} minutes; \
                 the clock starts when you press Start, not when you open the link.\n\n{url}\n\n\
                 Keep this link to yourself: it is your way in.\n",
                interview.title
            ),
        ),
        _ => (
            format!("Your interview: {}", interview.title),
            format!(
                "Hello {name},\n\nHere is the link to your pair-programming interview, \"{}\":\n\n{url}\n\n\
                 Keep this link to yourself: it is your way in.\n",
                interview.title
            ),
        ),
    }
}
