//! The schema's own guarantees: they hold even if the code above is wrong.

use holdfast_domain::error::{constraint, sqlstate};

/// PostgreSQL's codes for a broken unique index and a broken check.
const UNIQUE_VIOLATION: &str = "23505";
const CHECK_VIOLATION: &str = "23514";
use holdfast_domain::reservations::reserve;
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::helpers::World;

#[tokio::test]
async fn a_second_active_reservation_inserted_directly_in_sql_fails_on_the_index() {
    let w = World::new().await;
    let [a, b] = <[_; 2]>::try_from(w.agents(2).await).expect("two");
    let plot = w.plot().await;
    reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("reserve");

    let err = w
        .conn
        .execute_unprepared(&format!(
            "INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
             VALUES (gen_random_uuid(), '{}', '{plot}', '{}', 'ACTIVE', now(), now() + interval '1 hour')",
            b.workspace_id, b.user_id
        ))
        .await
        .expect_err("the index refuses it");

    assert_eq!(sqlstate(&err).as_deref(), Some(UNIQUE_VIOLATION), "{err}");
    assert_eq!(
        constraint(&err).as_deref(),
        Some("reservation_one_active_per_property")
    );
    assert_eq!(w.count("SELECT count(*) FROM reservation").await, 1);
}

#[tokio::test]
async fn a_reserved_property_without_a_holder_or_an_end_is_refused_by_the_check() {
    let w = World::new().await;
    let plot = w.plot().await;
    for set in [
        "status = 'RESERVED'",
        "status = 'RESERVED', reserved_until = now()",
    ] {
        let err = w
            .conn
            .execute_unprepared(&format!("UPDATE property SET {set} WHERE id = '{plot}'"))
            .await
            .expect_err("the check refuses it");
        assert_eq!(sqlstate(&err).as_deref(), Some(CHECK_VIOLATION), "{err}");
        assert_eq!(constraint(&err).as_deref(), Some("chk_reserved_has_user"));
    }
}

#[tokio::test]
async fn a_reservation_cannot_point_at_a_property_of_another_workspace() {
    let w = World::new().await;
    let plot = w.plot().await;
    let (other, boss) =
        holdfast_domain::directory::create_workspace(&w.conn, "Rival", "b@rival.test", "B")
            .await
            .expect("ws");
    let err = w
        .conn
        .execute_unprepared(&format!(
            "INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
             VALUES (gen_random_uuid(), '{}', '{plot}', '{}', 'ACTIVE', now(), now() + interval '1 hour')",
            other.id, boss.id
        ))
        .await
        .expect_err("the foreign key refuses it");
    assert!(err.to_string().contains("foreign key"), "{err}");
}

#[tokio::test]
async fn codes_are_unique_per_project_in_the_schema() {
    let w = World::new().await;
    let plot = w.plot().await;
    let err = w
        .conn
        .execute_unprepared(&format!(
            "INSERT INTO property (id, workspace_id, project_id, code) \
             SELECT gen_random_uuid(), workspace_id, project_id, code FROM property WHERE id = '{plot}'"
        ))
        .await
        .expect_err("duplicate code");
    assert_eq!(
        constraint(&err).as_deref(),
        Some("property_code_unique_per_project")
    );
}

#[tokio::test]
async fn the_sweep_finds_lapsed_holds_through_the_partial_index_of_story_2_4() {
    let w = World::new().await;
    // On a tiny table the planner would rightly scan it: forbid that, in one
    // transaction so that the setting and the EXPLAINs share a connection.
    let txn = w.conn.begin().await.expect("begin");
    txn.execute_unprepared("SET LOCAL enable_seqscan = off")
        .await
        .expect("set");
    for (sql, index) in [(
        "EXPLAIN SELECT id FROM property WHERE status = 'RESERVED' AND reserved_until <= now() ORDER BY reserved_until LIMIT 10",
        "idx_property_expired_reservations",
    )] {
        let plan = txn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .expect("explain");
        let text: Vec<String> = plan
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("plan line"))
            .collect();
        assert!(
            text.join("\n").contains(index),
            "{sql} should use {index}: {text:#?}"
        );
    }
}
