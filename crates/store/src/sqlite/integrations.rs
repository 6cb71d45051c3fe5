//! Integration keys and Greenhouse's sent tests in SQLite (schema version 8, with the outbox).

use super::outbox::OutboxWrite;
use super::SqliteStore;
use crate::integrations::{Callback, IntegrationKey, PartnerTest};
use crate::{IntegrationStore, Result, StoreError, Ticket, TokenHash};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS integration_keys (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS partner_tests (
    partner_interview_id TEXT PRIMARY KEY,
    application_key TEXT NOT NULL UNIQUE,
    interview_id TEXT NOT NULL,
    test_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// The integration writes, applied by the outbox's writer path.
pub(crate) enum IntegrationWrite {
    AddKey(IntegrationKey, TokenHash),
    RevokeKey(String, i64),
    AddPartnerTest(PartnerTest),
}

pub(super) fn apply(txn: &Connection, write: &IntegrationWrite) -> Result<()> {
    match write {
        IntegrationWrite::AddKey(key, hash) => {
            txn.execute(
                "INSERT INTO integration_keys (id, hash, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key.id, &hash[..], key.name, key.created_at],
            )?;
        }
        IntegrationWrite::RevokeKey(id, at) => {
            let changed = txn.execute(
                "UPDATE integration_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )?;
            if changed == 0 {
                return Err(StoreError::NoSuchToken);
            }
        }
        IntegrationWrite::AddPartnerTest(t) => {
            let (url, key) = t
                .callback
                .as_ref()
                .map(|c| (c.url.as_str(), c.key.as_str()))
                .unzip();
            txn.execute(
                "INSERT INTO partner_tests (partner_interview_id, application_key, interview_id, test_id, created_at, callback_url, callback_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![t.partner_interview_id, t.application_key, t.interview_id, t.test_id, t.created_at, url, key],
            )?;
        }
    }
    Ok(())
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IntegrationKey> {
    Ok(IntegrationKey {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        revoked_at: r.get(3)?,
    })
}

fn test_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PartnerTest> {
    let url: Option<String> = r.get(5)?;
    let key: Option<String> = r.get(6)?;
    Ok(PartnerTest {
        partner_interview_id: r.get(0)?,
        application_key: r.get(1)?,
        interview_id: r.get(2)?,
        test_id: r.get(3)?,
        created_at: r.get(4)?,
        callback: url.map(|url| Callback {
            url,
            key: key.unwrap_or_default(),
        }),
    })
}

/// A sent test's columns, as [`test_row`] reads them (the callback's key reads empty once the
/// callback is delivered or given up).
const TEST_COLUMNS: &str =
    "partner_interview_id, application_key, interview_id, test_id, created_at, callback_url, callback_key";

impl IntegrationStore for SqliteStore {
    fn add_integration_key(&self, key: &IntegrationKey, hash: &TokenHash) -> Ticket {
        self.outbox_write(OutboxWrite::Integration(IntegrationWrite::AddKey(
            key.clone(),
            *hash,
        )))
    }

    fn integration_keys(&self) -> Result<Vec<IntegrationKey>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, created_at, revoked_at FROM integration_keys ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([], key_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn integration_key(&self, hash: &TokenHash) -> Result<Option<IntegrationKey>> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT id, name, created_at, revoked_at FROM integration_keys WHERE hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&hash[..]], key_row)
            .optional()?)
    }

    fn revoke_integration_key(&self, id: &str, at: i64) -> Ticket {
        self.outbox_write(OutboxWrite::Integration(IntegrationWrite::RevokeKey(
            id.to_owned(),
            at,
        )))
    }

    fn add_partner_test(&self, test: &PartnerTest) -> Ticket {
        self.outbox_write(OutboxWrite::Integration(IntegrationWrite::AddPartnerTest(
            test.clone(),
        )))
    }

    fn partner_test_for(&self, application_key: &str) -> Result<Option<PartnerTest>> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {TEST_COLUMNS} FROM partner_tests WHERE application_key = ?1"
            ))?
            .query_row([application_key], test_row)
            .optional()?)
    }

    fn partner_test(&self, partner_interview_id: &str) -> Result<Option<PartnerTest>> {
        Ok(self
            .reader()
            .prepare_cached(&format!(
                "SELECT {TEST_COLUMNS} FROM partner_tests WHERE partner_interview_id = ?1"
            ))?
            .query_row([partner_interview_id], test_row)
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteConfig;

    #[tokio::test]
    async fn a_key_is_found_by_its_hash_until_revoked_and_a_test_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::at(dir.path().join("duet.db"))).unwrap();
        let key = IntegrationKey {
            id: "key1".into(),
            name: "greenhouse".into(),
            created_at: 5,
            revoked_at: None,
        };
        store
            .add_integration_key(&key, &[7; 32])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.integration_key(&[7; 32]).unwrap(), Some(key.clone()));
        assert_eq!(store.integration_key(&[8; 32]).unwrap(), None);
        store
            .revoke_integration_key("key1", 9)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.integration_key(&[7; 32]).unwrap(), None);
        assert_eq!(store.integration_keys().unwrap()[0].revoked_at, Some(9));
        assert!(matches!(
            store.revoke_integration_key("key1", 10).await.unwrap(),
            Err(StoreError::NoSuchToken)
        ));

        let first = PartnerTest {
            partner_interview_id: "pi1".into(),
            application_key: "app-1/take_home:q".into(),
            interview_id: "iv1".into(),
            test_id: "take_home:q".into(),
            created_at: 1,
            callback: None,
        };
        let again = PartnerTest {
            partner_interview_id: "pi2".into(),
            interview_id: "iv2".into(),
            ..first.clone()
        };
        store.add_partner_test(&first).await.unwrap().unwrap();
        store.add_partner_test(&again).await.unwrap().unwrap();
        assert_eq!(
            store.partner_test_for("app-1/take_home:q").unwrap(),
            Some(first.clone())
        );
        assert_eq!(store.partner_test("pi2").unwrap(), None);
        assert_eq!(store.partner_test("pi1").unwrap(), Some(first));
    }
}
