//! `duet user`: staff accounts from the command line, on the server's database directly (a
//! running server sees the change at once: it reads people from the same database at each
//! request, and its socket sweep closes a disabled person's websockets within
//! [`crate::sockets::SWEEP_EVERY`]). The first admin of a new server comes from here.

use crate::config::{UserAction, UserArgs};
use crate::{auth, people_api, session};
use anyhow::Context;
use duet_protocol::{AuditAction, Person, PersonState, PersonUpdate};
use duet_store::{NewAudit, Store};

/// Runs one `duet user` action, printing what the operator needs (a link, or a confirmation).
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let store = crate::database::open_store(
        &args.data_dir,
        args.database_url.as_ref(),
        Default::default(),
    )?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    match args.action.clone() {
        UserAction::Add {
            email,
            name,
            role,
            password_stdin,
        } => {
            let email =
                session::normalized_email(&email).context("that is not an email address")?;
            let name = name.trim().to_owned();
            anyhow::ensure!(
                !name.is_empty() && name.chars().count() <= 100,
                "--name must have 1 to 100 characters"
            );
            // Read the password before anything is stored: a bad one adds nobody.
            let password = match password_stdin {
                true => Some(read_password()?),
                false => None,
            };
            let person = Person {
                id: auth::random_token(12),
                email: email.clone(),
                name,
                role: role.into(),
                state: PersonState::Active,
                created_at: crate::rooms::now_ms(),
                password_set: false,
            };
            done(store.add_person(&person)).await?;
            audited(
                &*store,
                AuditAction::PersonAdded,
                format!("{email} ({})", person.role),
            )
            .await?;
            match password {
                Some(password) => {
                    let phc =
                        tokio::task::spawn_blocking(move || session::hash_password(&password))
                            .await?
                            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
                    done(store.set_password(&person.id, &phc)).await?;
                    audited(&*store, AuditAction::PasswordSet, email.clone()).await?;
                    println!("Added {email} ({}); they can sign in now.", person.role);
                }
                None => {
                    let link = issue_link(&*store, &args, &person.id, &public_url).await?;
                    println!(
                        "Added {email} ({}). Send them this link to set their password (it works once, for {} hours):\n  {link}",
                        person.role,
                        args.password_link_hours.max(1)
                    );
                }
            }
        }
        UserAction::Link { email } => {
            let email =
                session::normalized_email(&email).context("that is not an email address")?;
            let (person, _) = store
                .person_by_email(&email)?
                .with_context(|| format!("nobody here has the address {email}"))?;
            anyhow::ensure!(
                person.state == PersonState::Active,
                "{email} is disabled: enable them first"
            );
            let link = issue_link(&*store, &args, &person.id, &public_url).await?;
            audited(
                &*store,
                AuditAction::PersonChanged,
                format!("{email}: new password link"),
            )
            .await?;
            println!(
                "A new link for {email} to set their password (it works once, for {} hours; earlier links no longer work):\n  {link}",
                args.password_link_hours.max(1)
            );
        }
        UserAction::Disable { email } => {
            let email =
                session::normalized_email(&email).context("that is not an email address")?;
            let (person, _) = store
                .person_by_email(&email)?
                .with_context(|| format!("nobody here has the address {email}"))?;
            let update = PersonUpdate {
                state: Some(PersonState::Disabled),
                ..PersonUpdate::default()
            };
            // Ends their sessions in the same transaction.
            done(store.update_person(&person.id, &update)).await?;
            audited(
                &*store,
                AuditAction::PersonDisabled,
                format!("{email} ({}, disabled)", person.role),
            )
            .await?;
            println!("Disabled {email}: their sessions ended and they cannot sign in.");
        }
    }
    Ok(())
}

async fn issue_link(
    store: &dyn Store,
    args: &UserArgs,
    person_id: &str,
    public_url: &str,
) -> anyhow::Result<String> {
    let token = auth::random_token(32);
    let hours = args.password_link_hours.max(1) as i64;
    let expires_at = crate::rooms::now_ms() + hours * 3_600_000;
    done(store.issue_password_link(person_id, &auth::hash(&token), expires_at)).await?;
    Ok(people_api::password_url(public_url, &token))
}

/// One line of standard input, without its line ending, held to the password rules.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if let Some(problem) = session::password_problem(&password) {
        anyhow::bail!("{problem}");
    }
    Ok(password)
}

async fn audited(store: &dyn Store, action: AuditAction, target: String) -> anyhow::Result<()> {
    let entry = NewAudit {
        at: crate::rooms::now_ms(),
        actor: "cli".to_owned(),
        action,
        target: Some(target),
        from: None,
    };
    done(store.audit(&entry)).await
}

async fn done(ticket: duet_store::Ticket) -> anyhow::Result<()> {
    match ticket.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(duet_store::StoreError::EmailTaken)) => {
            anyhow::bail!("someone has this email address already")
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => anyhow::bail!("the store closed before the write finished"),
    }
}
