//! The release job's cases (a lapsed hold released, an unexpired one left,
//! idempotent, stale versions ignored): `reservations::expire`.

use holdfast_domain::entities::{EndSource, PropertyStatus, ReservationStatus};
use holdfast_domain::reservations::{self, ExpireOutcome, reserve};
use holdfast_domain::{ReservationId, WorkspaceId};

use crate::helpers::World;

#[tokio::test]
async fn expire_releases_an_expired_reservation() {
    // AC-2.4.2
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    w.lapse(r.id).await;

    let outcome = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("expire");

    let ExpireOutcome::Expired(changed) = outcome else {
        panic!("expected Expired, got {outcome:?}");
    };
    assert_eq!(changed.reservation.status, ReservationStatus::Expired);
    assert_eq!(changed.reservation.end_source, Some(EndSource::Job));
    assert_eq!(changed.reservation.ended_by_id, None);
    let ended_at = changed.reservation.ended_at.expect("endedAt recorded");
    assert!(ended_at >= changed.reservation.expires_at);
    let p = w.stored_property(plot).await;
    assert_eq!(p.status, PropertyStatus::Available);
    assert_eq!((p.reserved_by_id, p.reserved_until), (None, None));
    assert_eq!(w.counts().await.available, 1);
    w.check().await;
}

#[tokio::test]
async fn expire_leaves_a_reservation_that_has_not_expired_alone() {
    // AC-2.4.3
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;

    let outcome = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("expire");

    assert!(
        matches!(outcome, ExpireOutcome::NotDue { expires_at } if expires_at == r.expires_at),
        "{outcome:?}"
    );
    assert_eq!(w.stored_reservation(r.id).await, r);
    let p = w.stored_property(plot).await;
    assert_eq!(p.status, PropertyStatus::Reserved);
    assert_eq!(p.reserved_by_id, Some(a.user_id));
    w.check().await;
}

#[tokio::test]
async fn expire_is_idempotent() {
    // AC-2.4.4
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    w.lapse(r.id).await;

    let first = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("first");
    let after_first = w.stored_reservation(r.id).await;
    let second = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("second");

    assert!(matches!(first, ExpireOutcome::Expired(_)));
    assert!(
        matches!(second, ExpireOutcome::NotActive(ReservationStatus::Expired)),
        "{second:?}"
    );
    assert_eq!(
        w.stored_reservation(r.id).await,
        after_first,
        "nothing changed the second time"
    );
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Available
    );
    w.check().await;
}

#[tokio::test]
async fn expire_ignores_the_job_of_an_earlier_version() {
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    let extended = reservations::extend(&w.conn, &w.policy, &w.manager, r.id)
        .await
        .result
        .expect("extend")
        .reservation;
    w.lapse(r.id).await;

    let stale = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("stale");
    assert!(
        matches!(stale, ExpireOutcome::StaleVersion { current: 2 }),
        "{stale:?}"
    );
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Reserved
    );

    let current = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, extended.version)
        .await
        .result
        .expect("current");
    assert!(matches!(current, ExpireOutcome::Expired(_)), "{current:?}");
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Available
    );
    w.check().await;
}

#[tokio::test]
async fn expire_does_nothing_to_a_released_reservation_or_an_unknown_one() {
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    reservations::release(&w.conn, &w.policy, &a, r.id)
        .await
        .result
        .expect("release");
    let again = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("again")
        .reservation;
    w.lapse(r.id).await;

    let outcome = reservations::expire(&w.conn, &w.policy, a.workspace_id, r.id, 1)
        .await
        .result
        .expect("expire");
    assert!(
        matches!(
            outcome,
            ExpireOutcome::NotActive(ReservationStatus::Released)
        ),
        "{outcome:?}"
    );
    // The new hold on the same plot is untouched.
    assert_eq!(
        w.stored_reservation(again.id).await.status,
        ReservationStatus::Active
    );

    let unknown = reservations::expire(&w.conn, &w.policy, a.workspace_id, ReservationId::new(), 1)
        .await
        .result
        .expect("unknown");
    assert!(matches!(unknown, ExpireOutcome::NotFound));
    let foreign = reservations::expire(&w.conn, &w.policy, WorkspaceId::new(), again.id, 1)
        .await
        .result
        .expect("foreign");
    assert!(matches!(foreign, ExpireOutcome::NotFound));
    w.check().await;
}
