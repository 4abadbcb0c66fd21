//! The expiry warning: sent once per hold and extension, when its time has
//! come, and never for a hold that ended, was extended since, or is not due.

use std::time::Duration;

use holdfast_domain::entities::ReservationStatus;
use holdfast_domain::reservations::{self, WarnOutcome, reserve};

use crate::helpers::World;

const WARNING: Duration = Duration::from_secs(3600);

/// Moves a hold's end to `minutes` from now, as if the clock had advanced.
async fn ends_in(w: &World, id: holdfast_domain::ReservationId, minutes: u32) {
    w.sql(&format!(
        "UPDATE reservation SET expires_at = clock_timestamp() + interval '{minutes} minutes' \
           WHERE id = '{id}'; \
         UPDATE property SET reserved_until = r.expires_at FROM reservation r \
           WHERE r.id = '{id}' AND property.id = r.property_id"
    ))
    .await;
}

#[tokio::test]
async fn a_hold_is_warned_once_when_its_end_is_near_and_again_after_an_extension() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &agent, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    let ws = agent.workspace_id;

    // A day's hold, an hour's warning: not due yet.
    let early = reservations::warn(&w.conn, ws, r.id, 1, WARNING)
        .await
        .result
        .expect("early");
    let WarnOutcome::NotDue { at } = early else {
        panic!("expected NotDue, got {early:?}");
    };
    assert_eq!(at, r.expires_at - chrono::Duration::hours(1));

    // Its end comes within the hour: warned, once.
    ends_in(&w, r.id, 30).await;
    let warned = reservations::warn(&w.conn, ws, r.id, 1, WARNING).await;
    assert_eq!(warned.effects.warned.len(), 1, "the warning is an effect");
    assert!(matches!(warned.result, Ok(WarnOutcome::Warned(_))));
    let twice = reservations::warn(&w.conn, ws, r.id, 1, WARNING)
        .await
        .result
        .expect("twice");
    assert!(matches!(twice, WarnOutcome::AlreadyWarned), "{twice:?}");

    // Extended: the warning of the earlier version is stale, the new one
    // warns again when its time comes.
    let extended = reservations::extend(&w.conn, &w.policy, &w.manager, r.id)
        .await
        .result
        .expect("extend")
        .reservation;
    let stale = reservations::warn(&w.conn, ws, r.id, 1, WARNING)
        .await
        .result
        .expect("stale");
    assert!(
        matches!(stale, WarnOutcome::StaleVersion { current: 2 }),
        "{stale:?}"
    );
    ends_in(&w, r.id, 10).await;
    let again = reservations::warn(&w.conn, ws, r.id, extended.version, WARNING)
        .await
        .result
        .expect("again");
    assert!(matches!(again, WarnOutcome::Warned(_)), "{again:?}");
    w.check().await;
}

#[tokio::test]
async fn a_hold_that_ended_before_its_warning_is_not_warned() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &agent, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    reservations::release(&w.conn, &w.policy, &agent, r.id)
        .await
        .result
        .expect("release");

    let outcome = reservations::warn(&w.conn, agent.workspace_id, r.id, 1, WARNING).await;
    assert!(outcome.effects.is_empty());
    assert!(
        matches!(
            outcome.result,
            Ok(WarnOutcome::NotActive(ReservationStatus::Released))
        ),
        "{:?}",
        outcome.result
    );
}

#[test]
fn a_hold_no_longer_than_the_warning_gets_none() {
    let policy = holdfast_domain::Policy {
        expiry_warning: Some(Duration::from_secs(3)),
        ..Default::default()
    };
    let from = chrono::Utc::now();
    let warned_at = |secs| policy.warning_at(from, from + chrono::Duration::seconds(secs));
    assert_eq!(warned_at(6), Some(from + chrono::Duration::seconds(3)));
    assert_eq!(warned_at(3), None);
    assert_eq!(warned_at(2), None);
    let off = holdfast_domain::Policy {
        expiry_warning: None,
        ..Default::default()
    };
    assert_eq!(
        off.warning_at(from, from + chrono::Duration::hours(24)),
        None
    );
}
