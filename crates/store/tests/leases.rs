//! Several nodes on one PostgreSQL database, as two stores in one process (each its own
//! connections and writer, as two Duet processes would have): a room is held by one node at a
//! time through its lease, and a node that lost the lease cannot write into the room's log, not
//! even with appends already on their way when the other node took over.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use duet_protocol::{Actor, EventKind, Interview, InterviewId, InterviewMode, LogRecord};
use duet_store::testing::PgCluster;
use duet_store::{
    Checkpoint, InterviewStore, Lease, LogStore, PgConfig, PgStore, RoomLeases, StoreError,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

fn record(seq: u64, node: u8) -> LogRecord {
    LogRecord {
        seq,
        at_ms: seq as i64,
        kind: EventKind::Edit,
        by: Actor::Candidate,
        data: vec![node],
    }
}

async fn two_nodes(name: &str) -> (PgStore, PgStore, InterviewId) {
    let url = PgCluster::shared().database();
    let a = PgStore::open(PgConfig::at(&url)).unwrap();
    let b = PgStore::open(PgConfig::at(&url)).unwrap();
    let interview = Interview {
        id: InterviewId::parse(name).unwrap(),
        title: "T".into(),
        candidate_name: "Ada".into(),
        created_at: 0,
        question_id: None,
        candidate_ref: None,
        mode: InterviewMode::Live,
        time_limit_minutes: None,
        environment: "python".into(),
    };
    a.create_interview(&interview, &[]).await.unwrap().unwrap();
    (a, b, interview.id)
}

/// Node `node` takes the room as soon as the holder's lease lapses (the database's clock
/// decides when: this waits in real time, at most 5 s).
async fn take_over(store: &PgStore, room: &InterviewId, node: &str, ttl: Duration) -> Lease {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(lease) = store.acquire(room, node, ttl).unwrap() {
            return lease;
        }
        assert!(Instant::now() < deadline, "the lease never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn written_by(records: &[LogRecord]) -> Vec<(u64, u8)> {
    records.iter().map(|r| (r.seq, r.data[0])).collect()
}

#[tokio::test]
async fn a_paused_owner_cannot_write_after_another_node_took_its_room_over() {
    let (a, b, room) = two_nodes("contestedRoom").await;
    let ttl = Duration::from_millis(300);
    let lease_a = a.acquire(&room, "node-a", ttl).unwrap().unwrap();
    for seq in 1..=3 {
        a.append_fenced(&lease_a, record(seq, b'a'))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(b.acquire(&room, "node-b", ttl).unwrap(), None, "a holds it");
    // Renewing keeps it a's, at the same epoch; asking again is a renewal too.
    assert!(a.renew(&lease_a, ttl).unwrap());
    assert_eq!(
        a.acquire(&room, "node-a", ttl).unwrap(),
        Some(lease_a.clone())
    );

    // Node a pauses (SIGSTOP, a long stall, a partition): no renewal. Its lease lapses, and b
    // takes the room over with a newer epoch and loads it (for long enough that the checks
    // below, on a busy machine, all run while b holds it).
    let lease_b = take_over(&b, &room, "node-b", Duration::from_secs(10)).await;
    assert!(lease_b.epoch > lease_a.epoch);
    let history = b.load_history(&room).unwrap();
    assert_eq!(
        written_by(&history.records),
        [(1, b'a'), (2, b'a'), (3, b'a')]
    );
    for seq in 4..=5 {
        b.append_fenced(&lease_b, record(seq, b'b'))
            .await
            .unwrap()
            .unwrap();
    }

    // Node a wakes and goes on where it was: its next append is refused, so is a checkpoint,
    // its lease cannot be renewed, and the room is b's.
    let late = a.append_fenced(&lease_a, record(4, b'a')).await.unwrap();
    assert!(matches!(late, Err(StoreError::LeaseLost)), "{late:?}");
    let cp = Checkpoint {
        seq: 3,
        state: vec![1],
        owners: Vec::new(),
    };
    let late_cp = a.checkpoint_fenced(&lease_a, cp).await.unwrap();
    assert!(matches!(late_cp, Err(StoreError::LeaseLost)), "{late_cp:?}");
    assert!(!a.renew(&lease_a, ttl).unwrap());
    assert_eq!(a.acquire(&room, "node-a", ttl).unwrap(), None, "b holds it");
    assert_eq!(
        written_by(&a.read_log(&room, 0).unwrap()),
        [(1, b'a'), (2, b'a'), (3, b'a'), (4, b'b'), (5, b'b')],
        "one writer at a time, no gap, nothing of a's after b took over"
    );
    assert!(a.checkpoint_at_or_before(&room, 10).unwrap().is_none());

    // b stops gracefully and gives the room back: a takes it at once, with a newer epoch still,
    // and b's old lease writes nothing more.
    b.release(&lease_b).unwrap();
    let again = a.acquire(&room, "node-a", ttl).unwrap().unwrap();
    assert!(again.epoch > lease_b.epoch);
    let stale = b.append_fenced(&lease_b, record(6, b'b')).await.unwrap();
    assert!(matches!(stale, Err(StoreError::LeaseLost)), "{stale:?}");
    a.append_fenced(&again, record(6, b'a'))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.read_log(&room, 5).unwrap().len(), 1);
}

#[tokio::test]
async fn appends_racing_a_takeover_land_before_it_or_not_at_all() {
    let (a, b, room) = two_nodes("racedRoom").await;
    let ttl = Duration::from_millis(200);
    let lease_a = a.acquire(&room, "node-a", ttl).unwrap().unwrap();
    // Node a streams appends, 8 in flight, without renewing, until one is refused.
    let writer = tokio::spawn(async move {
        let mut in_flight = VecDeque::new();
        let mut stored = Vec::new();
        for seq in 1.. {
            if in_flight.len() == 8 {
                let (seq, ticket): (u64, duet_store::Ticket) = in_flight.pop_front().unwrap();
                match ticket.await.unwrap() {
                    Ok(()) => stored.push(seq),
                    Err(StoreError::LeaseLost) => break,
                    Err(e) => panic!("append {seq}: {e}"),
                }
            }
            in_flight.push_back((seq, a.append_fenced(&lease_a, record(seq, b'a'))));
            tokio::task::yield_now().await;
        }
        // What was on its way when the first refusal came is refused too.
        for (seq, ticket) in in_flight {
            let outcome = ticket.await.unwrap();
            assert!(
                matches!(outcome, Err(StoreError::LeaseLost)),
                "append {seq}: {outcome:?}"
            );
        }
        stored
    });
    let lease_b = take_over(&b, &room, "node-b", ttl).await;
    let taken_at = b.load_history(&room).unwrap().records.len() as u64;
    for seq in taken_at + 1..=taken_at + 5 {
        b.append_fenced(&lease_b, record(seq, b'b'))
            .await
            .unwrap()
            .unwrap();
    }
    let stored_by_a = writer.await.unwrap();
    assert!(
        !stored_by_a.is_empty(),
        "node a never wrote before the takeover"
    );
    let log = written_by(&b.read_log(&room, 0).unwrap());
    let expected: Vec<(u64, u8)> = (1..=taken_at)
        .map(|seq| (seq, b'a'))
        .chain((taken_at + 1..=taken_at + 5).map(|seq| (seq, b'b')))
        .collect();
    assert_eq!(
        log, expected,
        "a's records, then b's, no gap, no interleaving"
    );
    assert_eq!(stored_by_a, (1..=taken_at).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_holder_read_says_who_holds_a_room_and_for_how_long() {
    let (a, b, room) = two_nodes("heldRoom").await;
    assert_eq!(b.holder(&room).unwrap(), None, "nobody took it yet");
    let ttl = Duration::from_secs(6);
    let lease = a.acquire(&room, "node-a", ttl).unwrap().unwrap();
    let held = b.holder(&room).unwrap().unwrap();
    assert_eq!((held.node.as_str(), held.epoch), ("node-a", lease.epoch));
    assert!(held.is_live() && held.live_for <= ttl, "{held:?}");
    a.release(&lease).unwrap();
    let given_back = b.holder(&room).unwrap().unwrap();
    assert!(
        !given_back.is_live(),
        "a released lease has lapsed: {given_back:?}"
    );
    assert_eq!(
        given_back.epoch, lease.epoch,
        "the epoch stays for the next holder"
    );
}

/// One node leads the jobs that must run once (an advisory lock on a connection of its own);
/// the other waits, and takes over once the leader lets go.
#[tokio::test]
async fn one_node_leads_the_jobs_and_another_takes_over_when_it_goes() {
    let (a, b, _) = two_nodes("leaderRoom").await;
    let key = 0x6475_6574_7465_7374;
    let a_leads = a.leader(key);
    let waits = |rx: &tokio::sync::watch::Receiver<bool>, want: bool| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| *l == want))
                .await
                .is_ok()
        }
    };
    assert!(waits(&a_leads, true).await, "the only node never led");
    let b_leads = b.leader(key);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!*b_leads.borrow(), "two nodes lead at once");
    drop(a_leads);
    assert!(
        waits(&b_leads, true).await,
        "nobody took over from the leader that went"
    );
}

/// A node renews all its rooms in one statement: the leases it still holds are extended, a
/// lease another node took over is answered lost.
#[tokio::test]
async fn renewing_many_leases_at_once_extends_the_held_ones_only() {
    let (a, b, first) = two_nodes("manyRoomsA").await;
    let mut another = a.get_interview(&first).unwrap().unwrap();
    another.id = InterviewId::parse("manyRoomsB").unwrap();
    a.create_interview(&another, &[]).await.unwrap().unwrap();
    let second = another.id;
    let short = Duration::from_millis(300);
    let held = a
        .acquire(&first, "node-a", Duration::from_secs(10))
        .unwrap()
        .unwrap();
    let lapsing = a.acquire(&second, "node-a", short).unwrap().unwrap();
    take_over(&b, &second, "node-b", Duration::from_secs(10)).await;
    let renewed = a
        .renew_many(&[held.clone(), lapsing], Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        renewed,
        vec![first.clone()],
        "only the lease still held is renewed"
    );
    assert!(b.holder(&first).unwrap().unwrap().is_live());
    assert_eq!(
        a.renew_many(&[], Duration::from_secs(1)).unwrap(),
        Vec::<InterviewId>::new()
    );
}
