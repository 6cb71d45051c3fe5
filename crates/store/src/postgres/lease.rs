//! [`RoomLeases`] on Postgres: each a single statement on a pooled connection, timed by the
//! database's clock (`clock_timestamp()`, unix milliseconds), so the nodes' own clocks never
//! matter. The fence itself is in the writer's batch (`writer.rs`).
//!
//! Leading the jobs that run once across nodes is a session-level advisory lock
//! (`pg_try_advisory_lock`) held on a connection taken out of the pool for it: PostgreSQL
//! itself lets it go when that connection ends, however the node ends.

use super::writer::Write;
use super::PgStore;
use crate::lease::{Holder, Lease, RoomLeases, MAX_LEASE_TTL};
use crate::{Checkpoint, Result, Ticket};
use duet_protocol::{InterviewId, LogRecord};
use std::time::Duration;
use tokio::sync::watch;

/// How often a node that does not lead tries again, and the leader checks its connection.
const LEADER_EVERY: Duration = Duration::from_secs(2);

/// The database's time now, unix milliseconds.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::int8";

fn ttl_ms(ttl: Duration) -> i64 {
    ttl.min(MAX_LEASE_TTL).as_millis() as i64
}

impl RoomLeases for PgStore {
    fn acquire(&self, room: &InterviewId, node: &str, ttl: Duration) -> Result<Option<Lease>> {
        let (room, node, ttl) = (room.clone(), node.to_owned(), ttl_ms(ttl));
        self.read(move |c| async move {
            // One statement: a free room is taken at epoch 1; a lapsed lease (anyone's) is taken
            // with the next epoch; this node's own live lease is renewed at its epoch; another
            // node's live lease is left alone (no row comes back).
            let row = c
                .query_opt(
                    &format!(
                        "INSERT INTO room_leases (interview_id, node, epoch, expires_at) \
                         VALUES ($1, $2, 1, {NOW_MS} + $3) \
                         ON CONFLICT (interview_id) DO UPDATE SET \
                           epoch = CASE WHEN room_leases.node = excluded.node AND room_leases.expires_at > {NOW_MS} \
                                        THEN room_leases.epoch ELSE room_leases.epoch + 1 END, \
                           node = excluded.node, \
                           expires_at = excluded.expires_at \
                         WHERE room_leases.node = excluded.node OR room_leases.expires_at <= {NOW_MS} \
                         RETURNING epoch"
                    ),
                    &[&room.as_str(), &node, &ttl],
                )
                .await?;
            Ok(match row {
                Some(row) => Some(Lease {
                    room,
                    node,
                    epoch: row.try_get(0)?,
                }),
                None => None,
            })
        })
    }

    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let (lease, ttl) = (lease.clone(), ttl_ms(ttl));
        self.read(move |c| async move {
            let renewed = c
                .execute(
                    &format!(
                        "UPDATE room_leases SET expires_at = {NOW_MS} + $4 \
                         WHERE interview_id = $1 AND node = $2 AND epoch = $3 AND expires_at > {NOW_MS}"
                    ),
                    &[&lease.room.as_str(), &lease.node, &lease.epoch, &ttl],
                )
                .await?;
            Ok(renewed == 1)
        })
    }

    fn renew_many(&self, leases: &[Lease], ttl: Duration) -> Result<Vec<InterviewId>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let rooms: Vec<String> = leases.iter().map(|l| l.room.as_str().to_owned()).collect();
        let nodes: Vec<String> = leases.iter().map(|l| l.node.clone()).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let ttl = ttl_ms(ttl);
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "UPDATE room_leases l SET expires_at = {NOW_MS} + $4 \
                         FROM unnest($1::text[], $2::text[], $3::int8[]) AS h(room, node, epoch) \
                         WHERE l.interview_id = h.room AND l.node = h.node AND l.epoch = h.epoch \
                         AND l.expires_at > {NOW_MS} \
                         RETURNING l.interview_id"
                    ),
                    &[&rooms, &nodes, &epochs, &ttl],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let id: String = r.try_get(0)?;
                    InterviewId::parse(&id)
                        .ok_or_else(|| crate::StoreError::Corrupt(format!("interview id {id:?}")))
                })
                .collect()
        })
    }

    fn holder(&self, room: &InterviewId) -> Result<Option<Holder>> {
        let room = room.clone();
        self.read(move |c| async move {
            let row = c
                .query_opt(
                    &format!(
                        "SELECT node, epoch, greatest(expires_at - {NOW_MS}, 0) \
                         FROM room_leases WHERE interview_id = $1"
                    ),
                    &[&room.as_str()],
                )
                .await?;
            let Some(row) = row else { return Ok(None) };
            let live_ms: i64 = row.try_get(2)?;
            Ok(Some(Holder {
                node: row.try_get(0)?,
                epoch: row.try_get(1)?,
                live_for: Duration::from_millis(u64::try_from(live_ms).unwrap_or(0)),
            }))
        })
    }

    fn release(&self, lease: &Lease) -> Result<()> {
        let lease = lease.clone();
        self.read(move |c| async move {
            c.execute(
                &format!(
                    "UPDATE room_leases SET expires_at = {NOW_MS} \
                     WHERE interview_id = $1 AND node = $2 AND epoch = $3"
                ),
                &[&lease.room.as_str(), &lease.node, &lease.epoch],
            )
            .await?;
            Ok(())
        })
    }

    fn leader(&self, key: i64) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let pool = self.pool.clone();
        self.runtime.spawn(async move {
            while !tx.is_closed() {
                let client = match pool.get().await {
                    Ok(pooled) => deadpool_postgres::Object::take(pooled),
                    Err(e) => {
                        tracing::warn!(error = %e, "store: no connection to compete for leading the jobs");
                        tokio::time::sleep(LEADER_EVERY).await;
                        continue;
                    }
                };
                // This connection holds the lock while this node leads; dropped (lost, or the
                // receiver gone), the lock goes with it.
                loop {
                    let leads = match client
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                        .await
                    {
                        Ok(row) => row.try_get::<_, bool>(0).unwrap_or(false),
                        Err(e) => {
                            tracing::warn!(error = %e, "store: lost the connection competing for the jobs");
                            break;
                        }
                    };
                    if leads {
                        tx.send_replace(true);
                        while !tx.is_closed() && client.simple_query("SELECT 1").await.is_ok() {
                            tokio::select! {
                                _ = tokio::time::sleep(LEADER_EVERY) => {}
                                _ = tx.closed() => {}
                            }
                        }
                        tx.send_replace(false);
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LEADER_EVERY) => {}
                        _ = tx.closed() => break,
                    }
                }
            }
        });
        rx
    }

    fn append_fenced(&self, lease: &Lease, record: LogRecord) -> Ticket {
        self.submit(|ack| Write::Append {
            id: lease.room.clone(),
            record,
            epoch: Some(lease.epoch),
            ack,
        })
    }

    fn checkpoint_fenced(&self, lease: &Lease, checkpoint: Checkpoint) -> Ticket {
        self.submit(|ack| Write::Checkpoint {
            id: lease.room.clone(),
            checkpoint,
            epoch: Some(lease.epoch),
            ack,
        })
    }
}
