//! The release job's cases (a lapsed hold released, an unexpired one left,
//! idempotent, stale versions ignored) through its handler, called directly
//! (no Redis), and the sweep's own report and logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::{EndSource, PropertyStatus, ReservationStatus};
use holdfast_domain::reservations::{self, extend};
use holdfast_domain::{Policy, ReservationId};
use holdfast_worker::sweep::sweep_once;
use holdfast_worker::{Outcome, ReleaseError, handle_job};

use crate::helpers::{World, job};

#[tokio::test]
async fn an_expired_reservation_is_released_by_its_job_and_the_plot_counts_as_available() {
    // AC-2.4.2
    let w = World::new().await;
    let r = w.reserve_many(1, Duration::from_secs(3600)).await.remove(0);
    w.lapse(r.id).await;
    assert_eq!(
        w.counts().await.available,
        1,
        "a lapsed hold already reads available"
    );

    let outcome = handle_job(&job(&r), &w.conn, &Policy::default())
        .await
        .expect("release");

    assert!(matches!(outcome, Outcome::Released { .. }), "{outcome:?}");
    let stored = w.stored(r.id).await;
    assert_eq!(stored.status, ReservationStatus::Expired);
    assert_eq!(stored.end_source, Some(EndSource::Job));
    assert!(stored.ended_at.expect("endedAt") >= stored.expires_at);
    let p = w.stored_property(r.property_id).await;
    assert_eq!(p.status, PropertyStatus::Available);
    assert_eq!((p.reserved_by_id, p.reserved_until), (None, None));
    let counts = w.counts().await;
    assert_eq!(
        (counts.available, counts.reserved),
        (1, 0),
        "availablePlots right afterwards"
    );
    w.audit_clean().await;
}

#[tokio::test]
async fn a_reservation_that_has_not_expired_is_left_untouched_and_its_job_retried() {
    // AC-2.4.3
    let w = World::new().await;
    let r = w.reserve_many(1, Duration::from_secs(3600)).await.remove(0);

    let result = handle_job(&job(&r), &w.conn, &Policy::default()).await;

    assert!(
        matches!(result, Err(ReleaseError::NotDue { due }) if due == r.expires_at),
        "{result:?}"
    );
    assert_eq!(w.stored(r.id).await, r, "no modification");
    assert_eq!(
        w.stored_property(r.property_id).await.status,
        PropertyStatus::Reserved
    );
    assert_eq!(w.counts().await.reserved, 1);
    w.audit_clean().await;
}

#[tokio::test]
async fn running_the_same_job_twice_releases_once() {
    // AC-2.4.4
    let w = World::new().await;
    let r = w.reserve_many(1, Duration::from_secs(3600)).await.remove(0);
    w.lapse(r.id).await;

    let first = handle_job(&job(&r), &w.conn, &Policy::default())
        .await
        .expect("first");
    let ended = w.stored(r.id).await;
    let second = handle_job(&job(&r), &w.conn, &Policy::default())
        .await
        .expect("second");

    assert!(matches!(first, Outcome::Released { .. }), "{first:?}");
    assert_eq!(
        second,
        Outcome::AlreadyEnded {
            status: ReservationStatus::Expired
        }
    );
    assert_eq!(
        w.stored(r.id).await,
        ended,
        "the second run changed nothing"
    );
    assert_eq!(w.counts().await.available, 1);
    w.audit_clean().await;
}

#[tokio::test]
async fn jobs_for_extended_released_or_unknown_reservations_change_nothing() {
    let w = World::new().await;
    let rs = w.reserve_many(2, Duration::from_secs(3600)).await;
    let extended = extend(&w.conn, &Policy::default(), &w.manager, rs[0].id)
        .await
        .result
        .expect("extend")
        .reservation;
    reservations::release(&w.conn, &Policy::default(), &w.manager, rs[1].id)
        .await
        .result
        .expect("release");
    w.lapse(rs[0].id).await;

    let stale = handle_job(&job(&rs[0]), &w.conn, &Policy::default())
        .await
        .expect("stale");
    let released = handle_job(&job(&rs[1]), &w.conn, &Policy::default())
        .await
        .expect("released");
    let mut unknown = job(&rs[0]);
    unknown.reservation_id = ReservationId::new();
    let missing = handle_job(&unknown, &w.conn, &Policy::default())
        .await
        .expect("unknown");

    assert_eq!(
        stale,
        Outcome::Superseded {
            current_version: extended.version
        }
    );
    assert_eq!(
        released,
        Outcome::AlreadyEnded {
            status: ReservationStatus::Released
        }
    );
    assert_eq!(missing, Outcome::NotFound);
    assert_eq!(w.stored(rs[0].id).await.status, ReservationStatus::Active);
    w.audit_clean().await;
}

#[tokio::test]
async fn a_database_outage_is_a_transient_failure_so_the_job_is_retried() {
    let db = connect(
        "postgres://postgres@127.0.0.1:1/nowhere",
        &PoolSettings {
            acquire_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        },
    )
    .await
    .expect("lazy pool");
    let j = holdfast_domain::job::HoldJob {
        workspace_id: holdfast_domain::WorkspaceId::new(),
        reservation_id: ReservationId::new(),
        version: 1,
        kind: holdfast_domain::job::JobKind::Release,
    };

    let result = handle_job(&j, &db, &Policy::default()).await;

    assert!(
        matches!(result, Err(ReleaseError::Transient(_))),
        "{result:?}"
    );
}

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

#[tokio::test]
async fn the_sweep_releases_every_expired_reservation_and_logs_what_it_did() {
    // AC-2.4.1, and AC-2.4.2/3 for the sweep
    let w = World::new().await;
    let rs = w.reserve_many(4, Duration::from_secs(3600)).await;
    for r in &rs[..3] {
        w.lapse(r.id).await;
    }
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let report = sweep_once(&w.conn, &Policy::default(), 2)
        .await
        .expect("sweep");

    assert_eq!((report.released, report.batches), (3, 2));
    let text = logs.text();
    assert!(
        text.contains("sweep released a batch of expired reservations"),
        "{text}"
    );
    assert!(
        text.contains("released=2") && text.contains("released=1"),
        "{text}"
    );
    assert!(
        text.contains("sweep done") && text.contains("released=3"),
        "{text}"
    );
    for r in &rs[..3] {
        let stored = w.stored(r.id).await;
        assert_eq!(stored.status, ReservationStatus::Expired);
        assert_eq!(stored.end_source, Some(EndSource::Sweep));
    }
    assert_eq!(
        w.stored(rs[3].id).await,
        rs[3],
        "the unexpired one is untouched"
    );
    let counts = w.counts().await;
    assert_eq!(
        (counts.available, counts.reserved),
        (3, 1),
        "availablePlots right afterwards"
    );

    let again = sweep_once(&w.conn, &Policy::default(), 2)
        .await
        .expect("again");
    assert_eq!(again.released, 0, "a second sweep releases nothing");
    assert!(
        logs.text().contains("released=0"),
        "even an empty sweep is logged"
    );
    w.audit_clean().await;
}
