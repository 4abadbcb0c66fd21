//! `holdfast-server audit`: exit 0 on a sound database, non-zero naming the
//! rows when an invariant is broken.

use holdfast_domain::Policy;
use holdfast_domain::reservations::reserve;
use holdfast_testkit::TestDb;
use sea_orm::ConnectionTrait;

use crate::helpers::{Scene, assert_audit_clean, audit_binary};

#[tokio::test]
async fn audit_exits_0_on_a_sound_database() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 3).await;
    reserve(
        &conn,
        &Policy::default(),
        &scene.agents[0].0,
        scene.plots[0],
    )
    .await
    .result
    .expect("reserve");
    let (code, out) = audit_binary(&db.url).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("every invariant holds"), "{out}");
    assert_audit_clean(&db.url).await;
}

#[tokio::test]
async fn audit_exits_non_zero_naming_the_rows_of_a_broken_invariant() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 3).await;
    let held = reserve(
        &conn,
        &Policy::default(),
        &scene.agents[0].0,
        scene.plots[0],
    )
    .await
    .result
    .expect("reserve")
    .reservation;
    // The plot forgets its hold while the reservation stays ACTIVE: what a
    // half-written release would leave behind.
    conn.execute_unprepared(&format!(
        "UPDATE property SET status = 'AVAILABLE', reserved_by_id = NULL, reserved_until = NULL \
         WHERE id = '{}'",
        scene.plots[0]
    ))
    .await
    .expect("break the invariant");

    let (code, out) = audit_binary(&db.url).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(code.is_some(), "exited, not killed: {out}");
    assert!(
        out.contains("an ACTIVE reservation's property is RESERVED"),
        "the invariant is named: {out}"
    );
    assert!(
        out.contains(&format!("reservation {}", held.id)),
        "the row is named: {out}"
    );
    // The untouched plots are not named.
    assert!(!out.contains(&scene.plots[1].to_string()), "{out}");
}
