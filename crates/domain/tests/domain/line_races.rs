//! Races on the line behind a held plot, against PostgreSQL: many agents
//! joining at once, every path that ends a hold racing on one lapsed hold,
//! and outsiders trying to get in ahead of the line as a hold runs out.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use holdfast_domain::db::PoolSettings;
use holdfast_domain::entities::queue_entry::QueueEntryStatus;
use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::line::{JoinRequest, join_queue};
use holdfast_domain::reads;
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{DomainError, Effects, Policy};
use tokio::sync::Barrier;

use crate::helpers::World;
use crate::line::{entry_now, held_with_line};

/// The calls of a race queue on one row lock, more of them than the pool
/// has connections: on a loaded machine the wait for a connection can pass
/// the default 5 s, which is not what these tests are about.
const RACE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_agents_joining_one_line_at_once_get_distinct_dense_places() {
    const N: usize = 50;
    let mut w = World::with_pool(PoolSettings {
        max_connections: 25,
        acquire_timeout: RACE_ACQUIRE_TIMEOUT,
        ..PoolSettings::default()
    })
    .await;
    w.policy.max_queue_length = N as u32;
    let h = held_with_line(&w, 0).await;
    let agents = w.agents(N).await;
    let start = Arc::new(Barrier::new(N));

    let joined = join_all(agents.iter().map(|agent| {
        let (conn, policy, start, agent) =
            (w.conn.clone(), w.policy.clone(), start.clone(), *agent);
        tokio::spawn(async move {
            start.wait().await;
            let request = JoinRequest {
                property_id: h.plot,
                buyer: None,
            };
            join_queue(&conn, &policy, (&agent).into(), &request)
                .await
                .result
        })
    }))
    .await;

    let mut entries = Vec::new();
    for result in joined {
        let entry = result.expect("task").expect("every join waits in line");
        assert_eq!(entry.status, QueueEntryStatus::Waiting);
        entries.push(entry_now(&w, entry.id).await);
    }
    let mut places: Vec<i64> = entries
        .iter()
        .map(|e| e.position.expect("a place"))
        .collect();
    places.sort();
    assert_eq!(
        places,
        (1..=N as i64).collect::<Vec<_>>(),
        "1..50, each once"
    );
    // First come, first served: the places follow the order of arrival.
    entries.sort_by_key(|e| e.position);
    assert!(
        entries
            .windows(2)
            .all(|p| p[0].entry.created_at < p[1].entry.created_at),
        "places follow the moments the joins were written"
    );
    w.check().await;
}

/// What a racer's call committed, for counting (none for a refused call).
fn ended_and_started(effects: &Effects) -> (usize, usize) {
    (effects.ended.len(), effects.started.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_job_two_sweeps_a_takeover_and_a_release_racing_on_one_lapsed_hold_move_the_line_once()
{
    let w = World::with_pool(PoolSettings {
        max_connections: 10,
        acquire_timeout: RACE_ACQUIRE_TIMEOUT,
        ..PoolSettings::default()
    })
    .await;
    let outsider = w.agent().await;
    for round in 0..10 {
        let h = held_with_line(&w, 3).await;
        w.lapse(h.held).await;
        let start = Arc::new(Barrier::new(5));
        let racer = |which: usize| {
            let (conn, policy, start) = (w.conn.clone(), w.policy.clone(), start.clone());
            let (ws, manager, plot, held) = (w.admin.workspace_id, w.manager, h.plot, h.held);
            tokio::spawn(async move {
                start.wait().await;
                match which {
                    0 => {
                        reservations::expire(&conn, &policy, ws, held, 1)
                            .await
                            .effects
                    }
                    1 | 2 => reservations::sweep_batch(&conn, &policy, 10)
                        .await
                        .expect("sweep"),
                    3 => reserve(&conn, &policy, &outsider, plot).await.effects,
                    _ => {
                        reservations::release(&conn, &policy, &manager, held)
                            .await
                            .effects
                    }
                }
            })
        };
        let effects = join_all((0..5).map(racer)).await;
        let (mut ended, mut started) = (0, 0);
        for e in effects {
            let (en, st) = ended_and_started(&e.expect("task"));
            ended += en;
            started += st;
        }
        assert_eq!(
            (ended, started),
            (1, 1),
            "round {round}: one end, one promotion"
        );

        let r = w.stored_reservation(h.held).await;
        assert_eq!(r.status, ReservationStatus::Expired, "round {round}");
        let first = entry_now(&w, h.line[0].1).await.entry;
        assert_eq!(first.status, QueueEntryStatus::Promoted, "round {round}");
        for (_, id) in &h.line[1..] {
            let waiting = entry_now(&w, *id).await.position.is_some();
            assert!(waiting, "round {round}: the others still wait");
        }
        let p = w.stored_property(h.plot).await;
        assert_eq!(p.reserved_by_id, Some(h.line[0].0.user_id), "round {round}");
        assert_eq!(
            w.count(&format!(
                "SELECT count(*) FROM reservation WHERE property_id = '{}'",
                h.plot
            ))
            .await,
            2,
            "round {round}: the lapsed hold and the promoted one"
        );
    }
    w.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outsiders_reserving_as_a_hold_runs_out_never_get_ahead_of_the_line() {
    let w = World::with_pool(PoolSettings {
        max_connections: 10,
        acquire_timeout: RACE_ACQUIRE_TIMEOUT,
        ..PoolSettings::default()
    })
    .await;
    let plot = w.plot().await;
    let holder = w.agent().await;
    let short = Policy {
        ttl: Duration::from_secs(1),
        ..w.policy.clone()
    };
    let held = reserve(&w.conn, &short, &holder, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    let first = w.agent().await;
    let entry = join_queue(
        &w.conn,
        &w.policy,
        (&first).into(),
        &JoinRequest {
            property_id: plot,
            buyer: None,
        },
    )
    .await
    .result
    .expect("join");

    // Outsiders reserve without pause, and a reader reads, from before the
    // hold runs out until well after.
    let until = tokio::time::Instant::now() + Duration::from_millis(2000);
    let outsiders = w.agents(4).await;
    let tries = outsiders.iter().map(|agent| {
        let (conn, policy, agent) = (w.conn.clone(), w.policy.clone(), *agent);
        tokio::spawn(async move {
            let mut tries = 0;
            while tokio::time::Instant::now() < until {
                tries += 1;
                match reserve(&conn, &policy, &agent, plot).await.result {
                    Err(DomainError::PropertyUnavailable { .. }) => {}
                    other => panic!("an outsider got {other:?}"),
                }
            }
            tries
        })
    });
    let reader = {
        let (conn, ws) = (w.conn.clone(), w.admin.workspace_id);
        tokio::spawn(async move {
            let mut reads = 0;
            while tokio::time::Instant::now() < until {
                reads += 1;
                let p = reads::properties_by_ids(&conn, ws, [plot])
                    .await
                    .expect("read")
                    .remove(0);
                assert_eq!(
                    p.status,
                    PropertyStatus::Reserved,
                    "never free while a line waits"
                );
            }
            reads
        })
    };
    let tries: usize = join_all(tries)
        .await
        .into_iter()
        .map(|t| t.expect("task"))
        .sum();
    let reads = reader.await.expect("reader");
    assert!(
        tries > 20 && reads > 20,
        "the race ran ({tries} reserves, {reads} reads)"
    );

    let entry = entry_now(&w, entry.id).await.entry;
    assert_eq!(entry.status, QueueEntryStatus::Promoted);
    let promoted = w
        .stored_reservation(entry.reservation_id.expect("its hold"))
        .await;
    assert_eq!(promoted.agent_id, first.user_id);
    assert!(
        promoted.created_at >= held.expires_at,
        "not before the hold ran out"
    );
    assert_eq!(
        w.stored_reservation(held.id).await.ended_at,
        Some(promoted.created_at),
        "the promoted hold began when the first ended"
    );
    w.check().await;
}
