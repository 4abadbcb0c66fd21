use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{DomainError, Policy, PropertyId, directory};

use crate::helpers::World;

#[tokio::test]
async fn a_reservation_holds_the_property_for_the_hold_time() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;

    let written = reserve(&w.conn, &w.policy, &agent, plot).await;
    let r = written.result.expect("reserve");

    let res = r.reservation;
    assert_eq!(res.status, ReservationStatus::Active);
    assert_eq!(res.agent_id, agent.user_id);
    assert_eq!(res.version, 1);
    assert_eq!(res.extension_count, 0);
    assert_eq!((res.expires_at - res.created_at).num_seconds(), 24 * 3600);
    let p = w.stored_property(plot).await;
    assert_eq!(p.status, PropertyStatus::Reserved);
    assert_eq!(p.reserved_by_id, Some(agent.user_id));
    assert_eq!(p.reserved_until, Some(res.expires_at));
    // Nothing was taken over: the reserve ended no hold.
    assert!(written.effects.ended.is_empty());
    w.check().await;
}

#[tokio::test]
async fn a_reserved_property_refuses_another_agent_with_its_status_and_end() {
    let w = World::new().await;
    let [a, b] = <[_; 2]>::try_from(w.agents(2).await).expect("two");
    let plot = w.plot().await;
    let first = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("first");

    let err = reserve(&w.conn, &w.policy, &b, plot)
        .await
        .result
        .expect_err("second");

    match err {
        DomainError::PropertyUnavailable {
            status,
            reserved_until,
            ..
        } => {
            assert_eq!(status, PropertyStatus::Reserved);
            assert_eq!(reserved_until, Some(first.reservation.expires_at));
        }
        other => panic!("expected PropertyUnavailable, got {other:?}"),
    }
    assert!(
        err_message_names_until(&first.reservation.expires_at.to_rfc3339(), &w, &b, plot).await
    );
    w.check().await;
}

async fn err_message_names_until(
    until: &str,
    w: &World,
    who: &holdfast_domain::Actor,
    plot: PropertyId,
) -> bool {
    let msg = reserve(&w.conn, &w.policy, who, plot)
        .await
        .result
        .expect_err("refused")
        .to_string();
    msg.contains("RESERVED") && msg.contains(until)
}

#[tokio::test]
async fn the_holder_cannot_reserve_the_same_property_twice() {
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("first");
    let err = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect_err("again");
    assert!(
        matches!(err, DomainError::PropertyUnavailable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_sold_property_refuses_every_reservation() {
    let w = World::new().await;
    let [a, b] = <[_; 2]>::try_from(w.agents(2).await).expect("two");
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve");
    reservations::convert(&w.conn, &w.policy, &a, r.reservation.id)
        .await
        .result
        .expect("convert");

    let err = reserve(&w.conn, &w.policy, &b, plot)
        .await
        .result
        .expect_err("sold");

    match err {
        DomainError::PropertyUnavailable {
            status,
            reserved_until,
            ..
        } => {
            assert_eq!(status, PropertyStatus::Sold);
            assert_eq!(reserved_until, None);
        }
        other => panic!("expected PropertyUnavailable, got {other:?}"),
    }
    w.check().await;
}

#[tokio::test]
async fn a_lapsed_hold_is_taken_over_and_recorded_as_expired() {
    let w = World::new().await;
    let [a, b] = <[_; 2]>::try_from(w.agents(2).await).expect("two");
    let plot = w.plot().await;
    let old = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("old")
        .reservation;
    w.lapse(old.id).await;

    let new = reserve(&w.conn, &w.policy, &b, plot).await;
    new.result.expect("takeover");

    let taken = &new.effects.ended.first().expect("took over").reservation;
    assert_eq!(taken.id, old.id);
    let old = w.stored_reservation(old.id).await;
    assert_eq!(old.status, ReservationStatus::Expired);
    assert!(old.ended_at.is_some());
    assert_eq!(old.ended_by_id, None);
    assert_eq!(
        w.stored_property(plot).await.reserved_by_id,
        Some(b.user_id)
    );
    w.check().await;
}

#[tokio::test]
async fn an_agent_at_the_limit_cannot_reserve_more() {
    let mut w = World::new().await;
    w.policy = Policy {
        max_active_per_agent: 2,
        ..Policy::default()
    };
    let a = w.agent().await;
    let plots = w.plots(3).await;
    reserve(&w.conn, &w.policy, &a, plots[0])
        .await
        .result
        .expect("1");
    let second = reserve(&w.conn, &w.policy, &a, plots[1])
        .await
        .result
        .expect("2");

    let err = reserve(&w.conn, &w.policy, &a, plots[2])
        .await
        .result
        .expect_err("3");
    assert!(
        matches!(err, DomainError::ReservationLimitReached { limit: 2 }),
        "{err:?}"
    );
    assert_eq!(
        w.stored_property(plots[2]).await.status,
        PropertyStatus::Available
    );

    // A lapsed hold no longer counts, even before anything recorded it.
    w.lapse(second.reservation.id).await;
    reserve(&w.conn, &w.policy, &a, plots[2])
        .await
        .result
        .expect("after lapse");
    w.check().await;
}

#[tokio::test]
async fn no_limit_when_the_limit_is_zero() {
    let mut w = World::new().await;
    w.policy = Policy {
        max_active_per_agent: 0,
        ..Policy::default()
    };
    let a = w.agent().await;
    for plot in w.plots(12).await {
        reserve(&w.conn, &w.policy, &a, plot)
            .await
            .result
            .expect("reserve");
    }
    assert_eq!(w.counts().await.reserved, 12);
    w.check().await;
}

#[tokio::test]
async fn a_property_of_another_workspace_is_not_found() {
    let w = World::new().await;
    let plot = w.plot().await;
    let (other_ws, other_admin) =
        directory::create_workspace(&w.conn, "Rival", "boss@rival.test", "Bo")
            .await
            .expect("ws");
    let stranger = holdfast_domain::Actor {
        user_id: other_admin.id,
        workspace_id: other_ws.id,
        role: holdfast_domain::entities::Role::Admin,
    };

    let err = reserve(&w.conn, &w.policy, &stranger, plot)
        .await
        .result
        .expect_err("foreign");
    assert!(matches!(err, DomainError::NotFound("property")), "{err:?}");
    let err = reserve(&w.conn, &w.policy, &stranger, PropertyId::new())
        .await
        .result
        .expect_err("missing");
    assert!(matches!(err, DomainError::NotFound("property")), "{err:?}");
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Available
    );
}

/// `reserve` checks its caller in the statement that locks the property (the
/// server sends it the caller a token names, without a lookup first): a user
/// gone or deactivated, a suspended workspace, or a user named with another
/// workspace is refused, before anything changes, with or without an agent
/// limit.
#[tokio::test]
async fn a_caller_who_may_not_act_is_refused_and_nothing_changes() {
    let w = World::new().await;
    let plots = w.plots(2).await;
    let unlimited = Policy {
        max_active_per_agent: 0,
        ..w.policy.clone()
    };
    let agent = w.agent().await;
    let (other_ws, _) = directory::create_workspace(&w.conn, "Rival", "boss@rival.test", "Bo")
        .await
        .expect("ws");

    for policy in [&w.policy, &unlimited] {
        let ghost = holdfast_domain::Caller {
            user_id: holdfast_domain::UserId::new(),
            workspace_id: agent.workspace_id,
        };
        let err = reserve(&w.conn, policy, ghost, plots[0])
            .await
            .result
            .expect_err("no such user");
        assert!(matches!(err, DomainError::Unauthenticated(_)), "{err:?}");

        let wrong_workspace = holdfast_domain::Caller {
            user_id: agent.user_id,
            workspace_id: other_ws.id,
        };
        let err = reserve(&w.conn, policy, wrong_workspace, plots[0])
            .await
            .result
            .expect_err("not a user of that workspace");
        assert!(matches!(err, DomainError::Unauthenticated(_)), "{err:?}");
    }

    w.sql(&format!(
        "UPDATE app_user SET active = false WHERE id = '{}'",
        agent.user_id
    ))
    .await;
    for policy in [&w.policy, &unlimited] {
        let err = reserve(&w.conn, policy, &agent, plots[0])
            .await
            .result
            .expect_err("deactivated");
        assert!(
            matches!(
                err,
                DomainError::Unauthenticated("this user has been deactivated")
            ),
            "{err:?}"
        );
        // The caller comes first, also when the property does not exist.
        let err = reserve(&w.conn, policy, &agent, PropertyId::new())
            .await
            .result
            .expect_err("deactivated");
        assert!(matches!(err, DomainError::Unauthenticated(_)), "{err:?}");
    }

    let active = w.agent().await;
    directory::set_workspace_status(
        &w.conn,
        active.workspace_id,
        holdfast_domain::entities::WorkspaceStatus::Suspended,
    )
    .await
    .expect("suspend");
    for policy in [&w.policy, &unlimited] {
        let err = reserve(&w.conn, policy, &active, plots[1])
            .await
            .result
            .expect_err("suspended");
        assert!(
            matches!(err, DomainError::Forbidden("this workspace is suspended")),
            "{err:?}"
        );
    }

    for plot in &plots {
        assert_eq!(
            w.stored_property(*plot).await.status,
            PropertyStatus::Available
        );
    }
    assert_eq!(w.count("SELECT count(*) AS n FROM reservation").await, 0);

    // Back in good standing, the same caller reserves at once.
    directory::set_workspace_status(
        &w.conn,
        active.workspace_id,
        holdfast_domain::entities::WorkspaceStatus::Active,
    )
    .await
    .expect("resume");
    reserve(&w.conn, &w.policy, &active, plots[1])
        .await
        .result
        .expect("reserved");
}

#[tokio::test]
async fn release_extend_and_convert_keep_the_counts_right() {
    let w = World::new().await;
    let [a, b] = <[_; 2]>::try_from(w.agents(2).await).expect("two");
    let plots = w.plots(4).await;
    w.check().await;

    let r1 = reserve(&w.conn, &w.policy, &a, plots[0])
        .await
        .result
        .expect("r1")
        .reservation;
    let r2 = reserve(&w.conn, &w.policy, &b, plots[1])
        .await
        .result
        .expect("r2")
        .reservation;
    w.check().await;
    assert_eq!(w.counts().await.available, 2);

    // Agents may not act on each other's holds; managers may.
    let err = reservations::release(&w.conn, &w.policy, &b, r1.id)
        .await
        .result
        .expect_err("not hers");
    assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
    let released = reservations::release(&w.conn, &w.policy, &w.manager, r1.id)
        .await
        .result
        .expect("manager releases");
    assert_eq!(released.reservation.status, ReservationStatus::Released);
    assert_eq!(released.reservation.ended_by_id, Some(w.manager.user_id));
    w.check().await;
    assert_eq!(w.counts().await.available, 3);
    let err = reservations::release(&w.conn, &w.policy, &a, r1.id)
        .await
        .result
        .expect_err("twice");
    assert!(
        matches!(
            err,
            DomainError::ReservationNotActive {
                status: ReservationStatus::Released
            }
        ),
        "{err:?}"
    );

    // Extending: managers only, twice, then the limit.
    let err = reservations::extend(&w.conn, &w.policy, &b, r2.id)
        .await
        .result
        .expect_err("agent");
    assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
    let e1 = reservations::extend(&w.conn, &w.policy, &w.manager, r2.id)
        .await
        .result
        .expect("e1")
        .reservation;
    assert_eq!((e1.version, e1.extension_count), (2, 1));
    assert!(e1.expires_at >= r2.expires_at);
    let e2 = reservations::extend(&w.conn, &w.policy, &w.admin, r2.id)
        .await
        .result
        .expect("e2")
        .reservation;
    assert_eq!((e2.version, e2.extension_count), (3, 2));
    let err = reservations::extend(&w.conn, &w.policy, &w.manager, r2.id)
        .await
        .result
        .expect_err("e3");
    assert!(
        matches!(err, DomainError::ExtensionLimitReached { limit: 2 }),
        "{err:?}"
    );
    assert_eq!(
        w.stored_property(plots[1]).await.reserved_until,
        Some(e2.expires_at)
    );
    w.check().await;

    // Converting: the property is sold for good.
    let converted = reservations::convert(&w.conn, &w.policy, &b, r2.id).await;
    let sold = converted.result.expect("convert");
    assert_eq!(sold.reservation.status, ReservationStatus::Converted);
    // The conversion ended the plot's hold (RESERVED before it).
    assert_eq!(converted.effects.ended, vec![sold.clone()]);
    assert_eq!(
        w.stored_property(plots[1]).await.status,
        PropertyStatus::Sold
    );
    let counts = w.counts().await;
    assert_eq!(
        (counts.available, counts.reserved, counts.sold, counts.total),
        (3, 0, 1, 4)
    );
    let err = reservations::convert(&w.conn, &w.policy, &b, r2.id)
        .await
        .result
        .expect_err("twice");
    assert!(
        matches!(
            err,
            DomainError::ReservationNotActive {
                status: ReservationStatus::Converted
            }
        ),
        "{err:?}"
    );
    w.check().await;
}

#[tokio::test]
async fn a_lapsed_reservation_cannot_be_released_extended_or_converted() {
    let w = World::new().await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let r = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve")
        .reservation;
    w.lapse(r.id).await;

    for err in [
        reservations::release(&w.conn, &w.policy, &a, r.id)
            .await
            .result
            .expect_err("release"),
        reservations::convert(&w.conn, &w.policy, &a, r.id)
            .await
            .result
            .expect_err("convert"),
        reservations::extend(&w.conn, &w.policy, &w.manager, r.id)
            .await
            .result
            .expect_err("extend"),
    ] {
        assert!(
            matches!(
                err,
                DomainError::ReservationNotActive {
                    status: ReservationStatus::Expired
                }
            ),
            "{err:?}"
        );
    }
    // Reads already show it as over.
    assert_eq!(w.property_now(plot).await.status, PropertyStatus::Available);
    assert_eq!(w.counts().await.available, 1);
    w.check().await;
}
