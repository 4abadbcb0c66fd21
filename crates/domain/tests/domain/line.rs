//! The line behind a held plot: joining and leaving it, who is promoted when
//! a hold ends (by every path), who is passed over, a sale closing the line,
//! and no way round the line while anyone waits.

use holdfast_domain::entities::queue_entry::{self, QueueEntryStatus};
use holdfast_domain::entities::{EndSource, PropertyStatus, ReservationStatus};
use holdfast_domain::line::{JoinRequest, join_queue, leave_queue};
use holdfast_domain::reads;
use holdfast_domain::reservations::{self, ExpireOutcome, reserve};
use holdfast_domain::{Actor, Buyer, DomainError, Policy, PropertyId, QueueEntryId, ReservationId};

use crate::helpers::World;

fn buyer(name: &str) -> Buyer {
    Buyer {
        name: name.into(),
        phone: Some("+91 98 7654 3210".into()),
        email: None,
    }
}

/// `agent` joins the line for `plot`, for a buyer named after them.
pub async fn join(
    w: &World,
    agent: &Actor,
    plot: PropertyId,
) -> Result<queue_entry::Model, DomainError> {
    let request = JoinRequest {
        property_id: plot,
        buyer: Some(buyer(&format!("buyer of {}", agent.user_id))),
    };
    join_queue(&w.conn, &w.policy, agent.into(), &request)
        .await
        .result
}

pub async fn hold(w: &World, agent: &Actor, plot: PropertyId) -> ReservationId {
    reserve(&w.conn, &w.policy, agent, plot)
        .await
        .result
        .expect("reserve")
        .reservation
        .id
}

pub async fn entry_now(w: &World, id: QueueEntryId) -> reads::QueueEntryNow {
    reads::queue_entries_by_ids(&w.conn, w.admin.workspace_id, [id])
        .await
        .expect("read entry")
        .remove(0)
}

/// A plot held by an agent, with `n` other agents waiting for it, first in
/// line first.
pub struct HeldWithLine {
    pub plot: PropertyId,
    pub holder: Actor,
    pub held: ReservationId,
    pub line: Vec<(Actor, QueueEntryId)>,
}

pub async fn held_with_line(w: &World, n: usize) -> HeldWithLine {
    let plot = w.plot().await;
    let holder = w.agent().await;
    let held = hold(w, &holder, plot).await;
    let mut line = Vec::new();
    for agent in w.agents(n).await {
        let entry = join(w, &agent, plot).await.expect("join");
        line.push((agent, entry.id));
    }
    HeldWithLine {
        plot,
        holder,
        held,
        line,
    }
}

#[tokio::test]
async fn joining_a_free_plot_nobody_waits_for_holds_it_at_once() {
    let w = World::new().await;
    let plot = w.plot().await;
    let agent = w.agent().await;

    let written = join_queue(
        &w.conn,
        &w.policy,
        (&agent).into(),
        &JoinRequest {
            property_id: plot,
            buyer: Some(buyer("The Kapoors")),
        },
    )
    .await;
    let entry = written.result.expect("join");
    assert_eq!(entry.status, QueueEntryStatus::Promoted);
    let held = entry.reservation_id.expect("its hold");
    assert_eq!(written.effects.started.len(), 1, "one hold began");
    assert_eq!(written.effects.started[0].reservation.id, held);

    let r = w.stored_reservation(held).await;
    assert_eq!(r.status, ReservationStatus::Active);
    assert_eq!(r.agent_id, agent.user_id);
    assert_eq!(r.queue_entry_id, Some(entry.id));
    assert_eq!(r.buyer_name.as_deref(), Some("The Kapoors"));
    let p = w.stored_property(plot).await;
    assert_eq!(
        (p.status, p.reserved_by_id),
        (PropertyStatus::Reserved, Some(agent.user_id))
    );
    w.check().await;
}

#[tokio::test]
async fn joining_a_held_plot_waits_at_the_end_of_the_line() {
    let w = World::new().await;
    let h = held_with_line(&w, 3).await;

    for (place, (agent, id)) in h.line.iter().enumerate() {
        let now = entry_now(&w, *id).await;
        assert_eq!(now.entry.status, QueueEntryStatus::Waiting);
        assert_eq!(now.entry.agent_id, agent.user_id);
        assert_eq!(
            now.position,
            Some(place as i64 + 1),
            "first come, first served"
        );
    }
    let lengths = reads::line_lengths(&w.conn, w.admin.workspace_id, &[h.plot])
        .await
        .expect("lengths");
    assert_eq!(lengths[&h.plot], 3);
    // Waiting changes nothing about the hold.
    assert_eq!(
        w.stored_reservation(h.held).await.status,
        ReservationStatus::Active
    );
    w.check().await;
}

#[tokio::test]
async fn the_line_refuses_who_holds_or_waits_a_full_line_a_sold_plot_and_an_agent_at_the_limit() {
    let mut w = World::new().await;
    w.policy = Policy {
        max_queue_length: 2,
        max_active_per_agent: 1,
        ..Policy::default()
    };
    let h = held_with_line(&w, 2).await;

    let already =
        |r: Result<queue_entry::Model, DomainError>| matches!(r, Err(DomainError::AlreadyQueued));
    assert!(already(join(&w, &h.holder, h.plot).await), "the holder");
    assert!(
        already(join(&w, &h.line[0].0, h.plot).await),
        "one who waits"
    );
    let late = w.agent().await;
    assert!(
        matches!(
            join(&w, &late, h.plot).await,
            Err(DomainError::QueueFull { limit: 2 })
        ),
        "a third in a line of two"
    );
    w.policy.max_queue_length = 0;
    assert!(
        matches!(
            join(&w, &late, h.plot).await,
            Err(DomainError::QueueFull { limit: 0 })
        ),
        "the line turned off"
    );
    w.policy.max_queue_length = 2;

    // A sold plot has no line.
    let sold = w.plot().await;
    let seller = w.agent().await;
    let r = hold(&w, &seller, sold).await;
    reservations::convert(&w.conn, &w.policy, &seller, r)
        .await
        .result
        .expect("convert");
    assert!(matches!(
        join(&w, &late, sold).await,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Sold,
            ..
        })
    ));

    // A free plot is a hold at once, so the per-agent limit applies.
    let free = w.plot().await;
    assert!(matches!(join(&w, &late, free).await, Ok(e) if e.status == QueueEntryStatus::Promoted));
    let other = w.plot().await;
    assert!(matches!(
        join(&w, &late, other).await,
        Err(DomainError::ReservationLimitReached { limit: 1 })
    ));
    assert_eq!(
        w.count("SELECT count(*) FROM queue_entry WHERE status = 'WAITING'")
            .await,
        2,
        "no refused call left an entry"
    );
    w.check().await;
}

#[tokio::test]
async fn a_release_hands_the_plot_to_the_first_in_line_with_their_buyer() {
    let w = World::new().await;
    let h = held_with_line(&w, 2).await;
    let (first, first_entry) = h.line[0];

    let written = reservations::release(&w.conn, &w.policy, &h.holder, h.held).await;
    written.result.expect("release");
    let released = w.stored_reservation(h.held).await;
    assert_eq!(released.status, ReservationStatus::Released);

    assert_eq!(
        written.effects.started.len(),
        1,
        "one hold began, in the same call"
    );
    let promoted = &written.effects.started[0].reservation;
    assert_eq!(promoted.agent_id, first.user_id);
    assert_eq!(promoted.queue_entry_id, Some(first_entry));
    assert_eq!(
        promoted.buyer_name,
        Some(format!("buyer of {}", first.user_id)),
        "the buyer carried over"
    );
    assert_eq!(
        promoted.created_at,
        released.ended_at.expect("ended"),
        "no gap"
    );
    assert_eq!(
        promoted.expires_at - promoted.created_at,
        chrono::Duration::hours(24)
    );

    let entry = entry_now(&w, first_entry).await;
    assert_eq!(entry.entry.status, QueueEntryStatus::Promoted);
    assert_eq!(entry.entry.reservation_id, Some(promoted.id));
    assert_eq!(entry.position, None);
    assert_eq!(
        entry_now(&w, h.line[1].1).await.position,
        Some(1),
        "the second moves up"
    );
    let p = w.stored_property(h.plot).await;
    assert_eq!(
        (p.status, p.reserved_by_id),
        (PropertyStatus::Reserved, Some(first.user_id))
    );
    w.check().await;
}

#[tokio::test]
async fn every_path_that_ends_a_hold_moves_the_line() {
    let w = World::new().await;

    // A manager's release.
    let h = held_with_line(&w, 1).await;
    let e = reservations::release(&w.conn, &w.policy, &w.manager, h.held)
        .await
        .effects;
    assert_eq!(
        e.started[0].reservation.agent_id, h.line[0].0.user_id,
        "manager's release"
    );

    // The release job.
    let h = held_with_line(&w, 1).await;
    w.lapse(h.held).await;
    let written = reservations::expire(&w.conn, &w.policy, w.admin.workspace_id, h.held, 1).await;
    assert!(matches!(written.result, Ok(ExpireOutcome::Expired(_))));
    assert_eq!(
        written.effects.started[0].reservation.agent_id, h.line[0].0.user_id,
        "the job"
    );

    // The sweep.
    let h = held_with_line(&w, 1).await;
    w.lapse(h.held).await;
    let mut started = Vec::new();
    reservations::sweep(&w.conn, &w.policy, 10, |batch| {
        started.extend(batch.started.iter().map(|h| h.reservation.agent_id))
    })
    .await
    .expect("sweep");
    assert_eq!(started, vec![h.line[0].0.user_id], "the sweep");
    assert_eq!(
        w.stored_reservation(h.held).await.end_source,
        Some(EndSource::Sweep)
    );
    w.check().await;
}

/// The sweep ends a batch's holds together, then hands on the plots that
/// have a line: in one batch, plots with a line go to their first in line
/// and the others are freed, each hold ended once.
#[tokio::test]
async fn one_batch_of_the_sweep_hands_on_the_plots_with_a_line_and_frees_the_others() {
    let w = World::new().await;
    let mut lined = Vec::new();
    for _ in 0..3 {
        lined.push(held_with_line(&w, 2).await);
    }
    let mut alone = Vec::new();
    for _ in 0..3 {
        let (plot, agent) = (w.plot().await, w.agent().await);
        alone.push((plot, hold(&w, &agent, plot).await));
    }
    for held in lined
        .iter()
        .map(|h| h.held)
        .chain(alone.iter().map(|a| a.1))
    {
        w.lapse(held).await;
    }

    let (mut ended, mut started) = (Vec::new(), Vec::new());
    let report = reservations::sweep(&w.conn, &w.policy, 10, |batch| {
        ended.extend(batch.ended.iter().map(|h| h.reservation.id));
        started.extend(batch.started.iter().map(|h| h.reservation.agent_id));
    })
    .await
    .expect("sweep");

    assert_eq!((report.released, report.batches), (6, 1));
    ended.sort();
    let mut expected: Vec<_> = lined.iter().map(|h| h.held).collect();
    expected.extend(alone.iter().map(|a| a.1));
    expected.sort();
    assert_eq!(ended, expected, "every lapsed hold ended, once");
    started.sort();
    let mut firsts: Vec<_> = lined.iter().map(|h| h.line[0].0.user_id).collect();
    firsts.sort();
    assert_eq!(started, firsts, "each line moved once, to its first");
    for h in &lined {
        let p = w.stored_property(h.plot).await;
        assert_eq!(
            (p.status, p.reserved_by_id),
            (PropertyStatus::Reserved, Some(h.line[0].0.user_id))
        );
        assert_eq!(
            entry_now(&w, h.line[1].1).await.entry.status,
            QueueEntryStatus::Waiting,
            "the second stays in line"
        );
    }
    for (plot, held) in &alone {
        let p = w.stored_property(*plot).await;
        assert_eq!(
            (p.status, p.reserved_by_id),
            (PropertyStatus::Available, None)
        );
        let r = w.stored_reservation(*held).await;
        assert_eq!(
            (r.status, r.end_source),
            (ReservationStatus::Expired, Some(EndSource::Sweep))
        );
    }
    w.check().await;
}

#[tokio::test]
async fn agents_who_cannot_hold_are_passed_over_and_the_plot_is_free_when_nobody_can() {
    let mut w = World::new().await;
    w.policy.max_active_per_agent = 1;
    let h = held_with_line(&w, 3).await;
    let [(gone, gone_entry), (busy, busy_entry), (next, next_entry)] = h.line[..] else {
        unreachable!()
    };
    w.sql(&format!(
        "UPDATE app_user SET active = false WHERE id = '{}'",
        gone.user_id
    ))
    .await;
    hold(&w, &busy, w.plot().await).await;

    let written = reservations::release(&w.conn, &w.policy, &h.holder, h.held).await;
    assert_eq!(
        written.effects.started[0].reservation.agent_id,
        next.user_id
    );
    for (id, status) in [
        (gone_entry, QueueEntryStatus::Skipped),
        (busy_entry, QueueEntryStatus::Skipped),
        (next_entry, QueueEntryStatus::Promoted),
    ] {
        assert_eq!(entry_now(&w, id).await.entry.status, status);
    }
    let changed: Vec<_> = written.effects.entries.iter().map(|e| e.id).collect();
    assert_eq!(
        changed,
        vec![gone_entry, busy_entry, next_entry],
        "the effects name them"
    );

    // Nobody in line can hold: the plot is free.
    let h = held_with_line(&w, 1).await;
    hold(&w, &h.line[0].0, w.plot().await).await;
    let written = reservations::release(&w.conn, &w.policy, &h.holder, h.held).await;
    assert!(written.effects.started.is_empty());
    assert_eq!(
        entry_now(&w, h.line[0].1).await.entry.status,
        QueueEntryStatus::Skipped
    );
    assert_eq!(
        w.stored_property(h.plot).await.status,
        PropertyStatus::Available
    );
    w.check().await;
}

#[tokio::test]
async fn a_sale_closes_the_line() {
    let w = World::new().await;
    let h = held_with_line(&w, 2).await;
    let written = reservations::convert(&w.conn, &w.policy, &h.holder, h.held).await;
    written.result.expect("convert");
    assert!(written.effects.started.is_empty());
    assert_eq!(written.effects.entries.len(), 2);
    for (_, id) in &h.line {
        let e = entry_now(&w, *id).await;
        assert_eq!(e.entry.status, QueueEntryStatus::Closed);
        assert!(e.entry.ended_at.is_some());
    }
    assert_eq!(w.stored_property(h.plot).await.status, PropertyStatus::Sold);
    w.check().await;
}

#[tokio::test]
async fn an_entry_leaves_by_its_agent_or_a_manager_and_the_rest_move_up() {
    let w = World::new().await;
    let h = held_with_line(&w, 3).await;
    let [
        (first, first_entry),
        (second, second_entry),
        (_, third_entry),
    ] = h.line[..]
    else {
        unreachable!()
    };

    assert!(
        matches!(
            leave_queue(&w.conn, &second, first_entry).await.result,
            Err(DomainError::Forbidden(_))
        ),
        "another agent"
    );
    let left = leave_queue(&w.conn, &first, first_entry)
        .await
        .result
        .expect("leave");
    assert_eq!(left.status, QueueEntryStatus::Left);
    assert_eq!(left.ended_by_id, Some(first.user_id));
    let again = leave_queue(&w.conn, &first, first_entry)
        .await
        .result
        .expect("leave again");
    assert_eq!(
        again.status,
        QueueEntryStatus::Left,
        "leaving twice is harmless"
    );
    assert_eq!(entry_now(&w, second_entry).await.position, Some(1));
    assert_eq!(entry_now(&w, third_entry).await.position, Some(2));

    let removed = leave_queue(&w.conn, &w.manager, second_entry)
        .await
        .result
        .expect("a manager");
    assert_eq!(removed.ended_by_id, Some(w.manager.user_id));

    reservations::release(&w.conn, &w.policy, &h.holder, h.held)
        .await
        .result
        .expect("release");
    assert!(
        matches!(
            leave_queue(&w.conn, &w.manager, third_entry).await.result,
            Err(DomainError::InvalidInput(_))
        ),
        "a promoted entry no longer waits"
    );
    assert!(matches!(
        leave_queue(&w.conn, &w.manager, QueueEntryId::new())
            .await
            .result,
        Err(DomainError::NotFound(_))
    ));
    w.check().await;
}

#[tokio::test]
async fn while_anyone_waits_a_lapsed_hold_is_the_lines_and_nobody_else_gets_the_plot() {
    let w = World::new().await;
    let h = held_with_line(&w, 2).await;
    let (first, first_entry) = h.line[0];
    w.lapse(h.held).await;

    // Reads: the plot is not free, and the counts agree.
    assert_eq!(
        w.property_now(h.plot).await.status,
        PropertyStatus::Reserved
    );
    assert_eq!(w.counts().await.available, 0);
    w.check().await;

    // An outsider is refused, and their call hands the plot to the line.
    let outsider = w.agent().await;
    let written = reserve(&w.conn, &w.policy, &outsider, h.plot).await;
    assert!(matches!(
        written.result,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Reserved,
            ..
        })
    ));
    assert_eq!(written.effects.ended[0].reservation.id, h.held);
    assert_eq!(
        written.effects.started[0].reservation.agent_id,
        first.user_id
    );
    assert_eq!(
        w.stored_reservation(h.held).await.end_source,
        Some(EndSource::Takeover)
    );
    assert_eq!(
        entry_now(&w, first_entry).await.entry.status,
        QueueEntryStatus::Promoted
    );

    // A join after a lapse joins the end of the line, after the promotion.
    let promoted = written.effects.started[0].reservation.id;
    w.lapse(promoted).await;
    let late = w.agent().await;
    let written = join_queue(
        &w.conn,
        &w.policy,
        (&late).into(),
        &JoinRequest {
            property_id: h.plot,
            buyer: None,
        },
    )
    .await;
    let entry = written.result.expect("join");
    assert_eq!(entry.status, QueueEntryStatus::Waiting);
    assert_eq!(
        written.effects.started[0].reservation.agent_id,
        h.line[1].0.user_id
    );
    assert_eq!(entry_now(&w, entry.id).await.position, Some(1));
    w.check().await;
}

#[tokio::test]
async fn the_first_in_line_reserving_a_lapsed_plot_gets_the_hold_from_the_line() {
    let w = World::new().await;
    let h = held_with_line(&w, 1).await;
    let (first, first_entry) = h.line[0];
    w.lapse(h.held).await;

    let reserved = reserve(&w.conn, &w.policy, &first, h.plot)
        .await
        .result
        .expect("the first in line");
    assert_eq!(reserved.reservation.queue_entry_id, Some(first_entry));
    assert_eq!(reserved.reservation.agent_id, first.user_id);
    w.check().await;
}
