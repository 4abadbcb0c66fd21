//! Who a hold is for, and safe retries: the buyer and note are kept with
//! the reservation, checked before anything is written; a repeat of a call's
//! idempotency key answers the reservation the first call made, even when
//! the two calls race, and acts no further.

use std::sync::Arc;

use futures::future::join_all;
use holdfast_domain::entities::ReservationStatus;
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{Buyer, DomainError, ReserveRequest};
use tokio::sync::Barrier;

use crate::helpers::World;

fn sharmas() -> Buyer {
    Buyer {
        name: "The Sharmas".into(),
        phone: Some("+91 98765 43210".into()),
        email: Some("sharma@example.com".into()),
    }
}

fn keyed(plot: holdfast_domain::PropertyId, key: &str) -> ReserveRequest {
    ReserveRequest {
        property_id: plot,
        buyer: Some(sharmas()),
        note: Some("talking to their bank".into()),
        idempotency_key: Some(key.into()),
    }
}

#[tokio::test]
async fn a_hold_keeps_its_buyer_and_note() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;

    let r = reserve(&w.conn, &w.policy, &agent, keyed(plot, "k-1"))
        .await
        .result
        .expect("reserve")
        .reservation;

    assert_eq!(r.buyer(), Some(sharmas()));
    assert_eq!(r.note.as_deref(), Some("talking to their bank"));
    let stored = w.stored_reservation(r.id).await;
    assert_eq!(stored.buyer(), Some(sharmas()));
    assert_eq!(stored.idempotency_key.as_deref(), Some("k-1"));
    w.check().await;
}

#[tokio::test]
async fn bad_buyers_notes_and_keys_are_refused_before_anything_is_written() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let with = |f: &dyn Fn(&mut ReserveRequest)| {
        let mut r = keyed(plot, "k");
        f(&mut r);
        r
    };
    let bad = [
        with(&|r| r.buyer.as_mut().expect("buyer").name = String::new()),
        with(&|r| r.buyer.as_mut().expect("buyer").name = "x".repeat(201)),
        with(&|r| r.buyer.as_mut().expect("buyer").name = "Ann\u{7}".into()),
        with(&|r| r.buyer.as_mut().expect("buyer").phone = Some("call me".into())),
        with(&|r| r.buyer.as_mut().expect("buyer").email = Some("no-at-sign".into())),
        with(&|r| r.note = Some("x".repeat(2001))),
        with(&|r| r.note = Some("line\nbreak".into())),
        with(&|r| r.idempotency_key = Some(String::new())),
        with(&|r| r.idempotency_key = Some("k".repeat(201))),
    ];
    for request in bad {
        let err = reserve(&w.conn, &w.policy, &agent, request.clone())
            .await
            .result
            .expect_err("refused");
        assert!(
            matches!(err, DomainError::InvalidInput(_)),
            "{request:?}: {err:?}"
        );
    }
    assert_eq!(w.count("SELECT count(*) FROM reservation").await, 0);
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_reservation_whatever_its_status_now() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;

    let first = reserve(&w.conn, &w.policy, &agent, keyed(plot, "k-2"))
        .await
        .result
        .expect("first");
    assert!(!first.replayed);
    let again = reserve(&w.conn, &w.policy, &agent, keyed(plot, "k-2")).await;
    assert!(again.effects.is_empty(), "a replay acts no further");
    let again = again.result.expect("replayed");
    assert!(again.replayed);
    assert_eq!(again.reservation, first.reservation);

    // Released since: the retry still answers it, as it reads now.
    reservations::release(&w.conn, &w.policy, &agent, first.reservation.id)
        .await
        .result
        .expect("release");
    let after = reserve(&w.conn, &w.policy, &agent, keyed(plot, "k-2"))
        .await
        .result
        .expect("replayed after the release");
    assert_eq!(after.reservation.id, first.reservation.id);
    assert_eq!(after.reservation.status, ReservationStatus::Released);
    assert_eq!(w.count("SELECT count(*) FROM reservation").await, 1);

    // Another agent's key is theirs alone: the same text makes a new hold.
    let other = w.agent().await;
    let theirs = reserve(&w.conn, &w.policy, &other, keyed(plot, "k-2"))
        .await
        .result
        .expect("another agent's call");
    assert_ne!(theirs.reservation.id, first.reservation.id);
    w.check().await;
}

#[tokio::test]
async fn the_same_key_with_another_property_is_bad_input_and_changes_nothing() {
    let w = World::new().await;
    let agent = w.agent().await;
    let [a, b] = <[_; 2]>::try_from(w.plots(2).await).expect("two plots");

    reserve(&w.conn, &w.policy, &agent, keyed(a, "k-3"))
        .await
        .result
        .expect("first");
    let err = reserve(&w.conn, &w.policy, &agent, keyed(b, "k-3"))
        .await
        .result
        .expect_err("another plot");
    assert!(matches!(err, DomainError::InvalidInput(_)), "{err:?}");
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reservation WHERE property_id = '{b}'"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn a_key_older_than_a_day_is_free_for_a_new_call() {
    let w = World::new().await;
    let agent = w.agent().await;
    let [a, b] = <[_; 2]>::try_from(w.plots(2).await).expect("two plots");
    let old = reserve(&w.conn, &w.policy, &agent, keyed(a, "k-4"))
        .await
        .result
        .expect("first")
        .reservation;
    w.sql(&format!(
        "UPDATE reservation SET created_at = created_at - interval '25 hours', \
           expires_at = expires_at - interval '25 hours' WHERE id = '{}'",
        old.id
    ))
    .await;

    let new = reserve(&w.conn, &w.policy, &agent, keyed(b, "k-4"))
        .await
        .result
        .expect("the key's day is over");
    assert!(!new.replayed);
    assert_eq!(new.reservation.property_id, b);
    assert_eq!(w.stored_reservation(old.id).await.idempotency_key, None);
}

/// Two concurrent calls with one key (a client that retried before the
/// first answer came): one reservation, and both answer it.
#[tokio::test]
async fn concurrent_calls_with_one_key_make_one_reservation_and_both_answer_it() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let start = Arc::new(Barrier::new(8));

    let answers = join_all((0..8).map(|_| {
        let (conn, policy, start) = (w.conn.clone(), w.policy.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            reserve(&conn, &policy, &agent, keyed(plot, "k-5"))
                .await
                .result
        })
    }))
    .await;

    let answers: Vec<_> = answers
        .into_iter()
        .map(|a| {
            a.expect("task")
                .expect("every call answers the reservation")
        })
        .collect();
    let id = answers[0].reservation.id;
    assert!(answers.iter().all(|a| a.reservation.id == id));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert_eq!(w.count("SELECT count(*) FROM reservation").await, 1);
    w.check().await;
}

/// One key on two plots at the same instant: the unique index lets one
/// through; the other is told its key was used for another property.
#[tokio::test]
async fn one_key_on_two_plots_at_once_makes_one_reservation() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plots = w.plots(2).await;
    let start = Arc::new(Barrier::new(2));

    let answers = join_all(plots.iter().map(|plot| {
        let (conn, policy, start, plot) = (w.conn.clone(), w.policy.clone(), start.clone(), *plot);
        tokio::spawn(async move {
            start.wait().await;
            reserve(&conn, &policy, &agent, keyed(plot, "k-6"))
                .await
                .result
        })
    }))
    .await;

    let (ok, refused): (Vec<_>, Vec<_>) = answers
        .into_iter()
        .map(|a| a.expect("task"))
        .partition(Result::is_ok);
    assert_eq!(ok.len(), 1);
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(DomainError::InvalidInput(_)))),
        "{refused:?}"
    );
    assert_eq!(w.count("SELECT count(*) FROM reservation").await, 1);
    w.check().await;
}
