//! The line behind a held plot, moved by the worker: the release job hands
//! a lapsed plot to the next in line on time (and schedules the new hold's
//! own job), the sweep does it with Redis down, and a worker killed with
//! SIGKILL loses no promotion.

use std::time::Duration;

use chrono::Utc;
use holdfast_domain::entities::queue_entry::{self, QueueEntryStatus};
use holdfast_domain::entities::reservation;
use holdfast_domain::entities::{EndSource, PropertyStatus, ReservationStatus};
use holdfast_domain::line::{JoinRequest, join_queue};
use holdfast_domain::{Actor, Buyer, Policy, QueueEntryId};
use holdfast_queue::ReleaseQueue;
use holdfast_runtime::Outbox;
use holdfast_worker::sweep::{Sweeper, TickOutcome};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{Reservation, World, eventually, lag, sample};

/// `agent` waits in line for the plot of `held`, for a buyer.
async fn join(w: &World, agent: &Actor, held: &Reservation) -> QueueEntryId {
    let request = JoinRequest {
        property_id: held.property_id,
        buyer: Some(Buyer {
            name: format!("buyer of {}", agent.user_id),
            phone: None,
            email: None,
        }),
    };
    let entry = join_queue(&w.conn, &Policy::default(), agent.into(), &request)
        .await
        .result
        .expect("join");
    assert_eq!(entry.status, QueueEntryStatus::Waiting);
    entry.id
}

async fn entry(w: &World, id: QueueEntryId) -> queue_entry::Model {
    queue_entry::Entity::find_by_id(id)
        .one(&w.conn)
        .await
        .expect("query")
        .expect("entry")
}

/// Waits until the entry no longer waits; returns it as stored.
async fn wait_moved(w: &World, id: QueueEntryId, within: Duration) -> queue_entry::Model {
    eventually(within, "the line moved", || async {
        entry(w, id).await.status != QueueEntryStatus::Waiting
    })
    .await;
    entry(w, id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_job_hands_a_lapsed_plot_to_the_line_on_time_and_schedules_the_new_holds_job() {
    let w = World::new().await;
    // Holds from the line last 2 s in this worker, so that the promoted hold's
    // own job (scheduled by the worker after its commit) runs in the test.
    let mut args = w.args("off");
    args.extend(["--reservation-ttl".to_owned(), "2s".to_owned()]);
    let worker = w
        .spawn_worker_with(holdfast_worker::Config::load(args).expect("config"))
        .await;
    let held = w.reserve_many(1, Duration::from_secs(2)).await.remove(0);
    w.schedule(&held).await;
    let (first, second) = (w.agent().await, w.agent().await);
    let first_entry = join(&w, &first, &held).await;
    let second_entry = join(&w, &second, &held).await;

    let promoted = wait_moved(&w, first_entry, Duration::from_secs(10)).await;
    assert_eq!(promoted.status, QueueEntryStatus::Promoted);
    let ended = w.stored(held.id).await;
    assert_eq!(ended.status, ReservationStatus::Expired);
    assert_eq!(ended.end_source, Some(EndSource::Job));
    let hold = w.stored(promoted.reservation_id.expect("its hold")).await;
    assert_eq!(hold.agent_id, first.user_id);
    assert_eq!(
        Some(hold.created_at),
        ended.ended_at,
        "handed on in one step"
    );
    assert_eq!(hold.buyer_name, Some(format!("buyer of {}", first.user_id)));
    println!("promotion lag (s) by the release job: {}", lag(&ended));
    // Within about a second of the lapse (whole-second due times and a
    // 250 ms poll); the 2 s target is `just bench`'s, over 10,000 lines.
    assert!(lag(&ended) < 5.0, "on time: {}", lag(&ended));

    // The promoted hold got its own job: when it lapses, the line moves again.
    let next = wait_moved(&w, second_entry, Duration::from_secs(10)).await;
    assert_eq!(next.status, QueueEntryStatus::Promoted);
    let first_hold = w.stored(hold.id).await;
    assert_eq!(first_hold.end_source, Some(EndSource::Job));
    assert_eq!(
        w.stored_property(held.property_id).await.reserved_by_id,
        Some(second.user_id)
    );
    eventually(Duration::from_secs(2), "two promotions counted", || async {
        sample(
            &worker.metrics().await,
            "holdfast_queue_promotions_total{source=\"job\"}",
        ) == 2.0
    })
    .await;
    worker.stop().await;
    w.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_sweep_hands_lapsed_plots_to_their_lines() {
    let w = World::new().await;
    let holds = w.reserve_many(3, Duration::from_secs(3600)).await;
    let mut entries = Vec::new();
    for held in &holds {
        let agent = w.agent().await;
        entries.push((agent, join(&w, &agent, held).await));
        w.lapse(held.id).await;
    }
    let down = ReleaseQueue::new("redis://127.0.0.1:1", &w.queue_keys.name).expect("lazy");
    let sweeper = Sweeper {
        db: w.conn.clone(),
        outbox: Outbox::new(down.clone(), Policy::default()),
        queue: down,
        batch_size: 2,
        replica: "replica-a".to_owned(),
    };

    let outcome = sweeper.tick(Utc::now(), Duration::from_secs(5)).await;
    assert!(
        matches!(outcome, TickOutcome::Swept(report) if report.released == 3),
        "{outcome:?}"
    );
    for (held, (agent, id)) in holds.iter().zip(&entries) {
        assert_eq!(w.stored(held.id).await.end_source, Some(EndSource::Sweep));
        let promoted = entry(&w, *id).await;
        assert_eq!(promoted.status, QueueEntryStatus::Promoted);
        let p = w.stored_property(held.property_id).await;
        assert_eq!(
            (p.status, p.reserved_by_id),
            (PropertyStatus::Reserved, Some(agent.user_id)),
            "the plot went to the line, though no job could be scheduled"
        );
    }
    w.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_while_lines_are_due_loses_no_promotion() {
    let w = World::new().await;
    let holds = w.reserve_many(4, Duration::from_secs(2)).await;
    let mut entries = Vec::new();
    for held in &holds {
        w.schedule(held).await;
        let agent = w.agent().await;
        entries.push((agent, join(&w, &agent, held).await));
    }
    let blocker = w.lock_plots(&holds).await;
    let mut first = w.spawn_binary("off").await;
    let in_flight = w.wait_in_flight(Duration::from_secs(10)).await;
    first.child.kill().await.expect("SIGKILL");
    println!(
        "jobs in flight when the worker was killed: {}",
        in_flight.len()
    );
    blocker.rollback().await.expect("unlock plots");
    for (_, id) in &entries {
        assert_eq!(entry(&w, *id).await.status, QueueEntryStatus::Waiting);
    }

    let mut second = w.spawn_binary("off").await;
    for (held, (agent, id)) in holds.iter().zip(&entries) {
        let promoted = wait_moved(&w, *id, Duration::from_secs(30)).await;
        assert_eq!(promoted.status, QueueEntryStatus::Promoted);
        let ended = w.stored(held.id).await;
        assert_eq!(ended.end_source, Some(EndSource::Job), "by its job");
        let hold = w.stored(promoted.reservation_id.expect("its hold")).await;
        assert_eq!(hold.agent_id, agent.user_id);
        assert_eq!(hold.status, ReservationStatus::Active);
    }
    let from_the_line = reservation::Entity::find()
        .filter(reservation::Column::QueueEntryId.is_not_null())
        .count(&w.conn)
        .await
        .expect("count");
    assert_eq!(
        from_the_line,
        holds.len() as u64,
        "each line moved exactly once"
    );
    second.signal("TERM").await;
    assert_eq!(second.wait(Duration::from_secs(15)).await.code(), Some(0));
    w.audit_clean().await;
}
