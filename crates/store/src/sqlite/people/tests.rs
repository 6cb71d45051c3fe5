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
