//! Running a team: admins change users, managers change projects, operators
//! switch workspaces and users; a workspace never loses its last active
//! admin over the API, however the changes race.

use std::time::Duration;

use holdfast_domain::entities::{Role, WorkspaceStatus, user};
use holdfast_domain::team::{self, ProjectChange, UserChange};
use holdfast_domain::{Actor, DomainError, DomainResult};
use holdfast_testkit::Workspace;
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};

use crate::helpers::World;

fn role(role: Role) -> UserChange {
    UserChange {
        role: Some(role),
        ..UserChange::default()
    }
}

fn active(active: bool) -> UserChange {
    UserChange {
        active: Some(active),
        ..UserChange::default()
    }
}

fn as_admin(actor: &Actor) -> Actor {
    Actor {
        role: Role::Admin,
        ..*actor
    }
}

async fn stored_user(w: &World, actor: &Actor) -> user::Model {
    user::Entity::find_by_id(actor.user_id)
        .one(&w.conn)
        .await
        .expect("query")
        .expect("user")
}

async fn active_admins(w: &World) -> i64 {
    w.count(&format!(
        "SELECT count(*) FROM app_user WHERE workspace_id = '{}' AND role = 'ADMIN' AND active",
        w.admin.workspace_id
    ))
    .await
}

fn is_last_admin_refusal(result: &DomainResult<user::Model>) -> bool {
    matches!(result, Err(DomainError::InvalidInput(msg)) if msg.contains("last active admin"))
}

#[tokio::test]
async fn an_admin_renames_promotes_and_deactivates_a_user() {
    let w = World::new().await;
    let agent = w.agent().await;
    let change = UserChange {
        name: Some("Agent Smith".into()),
        role: Some(Role::Manager),
        active: Some(false),
    };
    let updated = team::update_user(&w.conn, &w.admin, agent.user_id, &change)
        .await
        .expect("update");
    assert_eq!(
        (updated.name.as_str(), updated.role, updated.active),
        ("Agent Smith", Role::Manager, false)
    );
    assert_eq!(stored_user(&w, &agent).await, updated);

    // Nothing given, nothing changed.
    let same = team::update_user(&w.conn, &w.admin, agent.user_id, &UserChange::default())
        .await
        .expect("no change");
    assert_eq!(same, updated);
}

#[tokio::test]
async fn only_admins_change_users_and_only_their_own_workspaces() {
    let w = World::new().await;
    let agent = w.agent().await;
    for caller in [&w.manager, &agent] {
        let err = team::update_user(&w.conn, caller, agent.user_id, &active(false))
            .await
            .expect_err("not an admin");
        assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
    }
    let other = Workspace::create(&w.conn, "Other Homes").await;
    let err = team::update_user(&w.conn, &w.admin, other.manager.user_id, &active(false))
        .await
        .expect_err("another workspace's user");
    assert!(matches!(err, DomainError::NotFound("user")), "{err:?}");
    assert!(stored_user(&w, &agent).await.active);
}

#[tokio::test]
async fn a_bad_name_is_refused_before_anything_changes() {
    let w = World::new().await;
    for name in ["", "   ", " Max", "Max\n", &"x".repeat(201)] {
        let change = UserChange {
            name: Some(name.to_owned()),
            ..UserChange::default()
        };
        let err = team::update_user(&w.conn, &w.admin, w.manager.user_id, &change)
            .await
            .expect_err("bad name");
        assert!(
            matches!(err, DomainError::InvalidInput(_)),
            "{name:?}: {err:?}"
        );
    }
    assert_eq!(stored_user(&w, &w.manager).await.name, "Max");
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let w = World::new().await;
    for change in [role(Role::Manager), role(Role::SalesAgent), active(false)] {
        let result = team::update_user(&w.conn, &w.admin, w.admin.user_id, &change).await;
        assert!(is_last_admin_refusal(&result), "{change:?}: {result:?}");
    }
    // A deactivated admin does not count.
    let spare = w.agent().await;
    team::update_user(&w.conn, &w.admin, spare.user_id, &role(Role::Admin))
        .await
        .expect("promote");
    team::update_user(&w.conn, &w.admin, spare.user_id, &active(false))
        .await
        .expect("deactivate the other admin");
    let result = team::update_user(&w.conn, &w.admin, w.admin.user_id, &role(Role::Manager)).await;
    assert!(is_last_admin_refusal(&result), "{result:?}");

    // With a second active admin, either may step down.
    team::update_user(&w.conn, &w.admin, w.manager.user_id, &role(Role::Admin))
        .await
        .expect("promote Max");
    let ada = team::update_user(&w.conn, &w.admin, w.admin.user_id, &role(Role::Manager))
        .await
        .expect("Ada steps down");
    assert_eq!(ada.role, Role::Manager);
    assert_eq!(active_admins(&w).await, 1);
    // Renaming the last admin, or re-stating their role, is no demotion.
    let max = as_admin(&w.manager);
    let change = UserChange {
        name: Some("Max Admin".into()),
        role: Some(Role::Admin),
        active: Some(true),
    };
    team::update_user(&w.conn, &max, max.user_id, &change)
        .await
        .expect("rename");
}

/// The two changes meet where the decision is made: each demotion is held
/// back (by a lock the test takes on both users' rows) until both have
/// started, so a rule judged without the workspace's lock would let both
/// through. Under the lock, the second sees the first and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_one_active_admin() {
    let w = World::new().await;
    team::update_user(&w.conn, &w.admin, w.manager.user_id, &role(Role::Admin))
        .await
        .expect("promote Max");
    let (ada, max) = (w.admin, as_admin(&w.manager));

    let blocker = w.conn.begin().await.expect("begin");
    blocker
        .execute_unprepared(&format!(
            "SELECT 1 FROM app_user WHERE id IN ('{}', '{}') FOR UPDATE",
            ada.user_id, max.user_id
        ))
        .await
        .expect("lock both users");
    let demote = |by: Actor, whom: Actor| {
        let conn = w.conn.clone();
        tokio::spawn(async move {
            team::update_user(&conn, &by, whom.user_id, &role(Role::SalesAgent)).await
        })
    };
    let first = demote(ada, max);
    let second = demote(max, ada);
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.rollback().await.expect("let them go");
    let results = [first.await.expect("join"), second.await.expect("join")];

    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let lost = results.iter().find(|r| r.is_err()).expect("a loser");
    // The loser was demoted before its turn came (FORBIDDEN), or found the
    // other already gone (the last-admin refusal): either way, refused.
    assert!(
        is_last_admin_refusal(lost) || matches!(lost, Err(DomainError::Forbidden(_))),
        "{lost:?}"
    );
    assert_eq!(active_admins(&w).await, 1);
    w.check().await;
}

/// Many admins deactivating one another in a ring, all at once, round after
/// round: whatever the order, the workspace keeps an active admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_deactivating_one_another_at_once_always_leave_an_active_admin() {
    const ADMINS: usize = 6;
    for round in 0..5 {
        let w = World::new().await;
        let mut admins = vec![w.admin];
        for agent in w.agents(ADMINS - 1).await {
            team::update_user(&w.conn, &w.admin, agent.user_id, &role(Role::Admin))
                .await
                .expect("promote");
            admins.push(as_admin(&agent));
        }
        let calls: Vec<_> = (0..ADMINS)
            .map(|i| {
                let (by, whom) = (admins[i], admins[(i + 1) % ADMINS]);
                let conn = w.conn.clone();
                tokio::spawn(async move {
                    team::update_user(&conn, &by, whom.user_id, &active(false)).await
                })
            })
            .collect();
        let mut done = 0;
        for call in calls {
            match call.await.expect("join") {
                Ok(_) => done += 1,
                Err(
                    DomainError::Unauthenticated(_)
                    | DomainError::InvalidInput(_)
                    | DomainError::Busy,
                ) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        let left = active_admins(&w).await;
        assert!(left >= 1, "round {round}: no active admin left");
        assert_eq!(
            left,
            (ADMINS - done) as i64,
            "round {round}: each success deactivated one admin"
        );
        w.check().await;
    }
}

/// The audit knows the rule's consequence: whatever operators deactivate,
/// a workspace never has no admin at all.
#[tokio::test]
async fn the_audit_finds_a_workspace_left_without_an_admin() {
    let w = World::new().await;
    team::switch_user(&w.conn, w.admin.user_id, false)
        .await
        .expect("an operator deactivates the last admin");
    w.check().await;
    w.sql(&format!(
        "UPDATE app_user SET role = 'MANAGER' WHERE id = '{}'",
        w.admin.user_id
    ))
    .await;
    let violations = holdfast_domain::audit::audit(&w.conn).await.expect("audit");
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0]
            .invariant
            .starts_with("every workspace has an ADMIN")
    );
    assert_eq!(
        violations[0].rows,
        [format!("workspace {}", w.admin.workspace_id)]
    );
}

#[tokio::test]
async fn operators_switch_users_idempotently_and_are_told_of_the_last_admin() {
    let w = World::new().await;
    let first = team::switch_user(&w.conn, w.manager.user_id, false)
        .await
        .expect("deactivate");
    assert!(first.was_active && !first.user.active);
    assert!(!first.was_last_active_admin, "Max is no admin");
    assert_eq!(first.workspace.name, "Acme Homes");
    let again = team::switch_user(&w.conn, w.manager.user_id, false)
        .await
        .expect("again");
    assert!(!again.was_active && !again.user.active);

    // Operators are above the last-admin rule, and are told.
    let ada = team::switch_user(&w.conn, w.admin.user_id, false)
        .await
        .expect("deactivate the last admin");
    assert!(ada.was_last_active_admin && !ada.user.active);
    assert_eq!(active_admins(&w).await, 0);
    let back = team::switch_user(&w.conn, w.admin.user_id, true)
        .await
        .expect("activate");
    assert!(!back.was_active && back.user.active && !back.was_last_active_admin);

    let err = team::switch_user(&w.conn, holdfast_domain::UserId::new(), false)
        .await
        .expect_err("no such user");
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn operators_suspend_and_resume_workspaces_idempotently() {
    let w = World::new().await;
    let ws = w.admin.workspace_id;
    let steps = [
        (WorkspaceStatus::Suspended, WorkspaceStatus::Active),
        (WorkspaceStatus::Suspended, WorkspaceStatus::Suspended),
        (WorkspaceStatus::Active, WorkspaceStatus::Suspended),
        (WorkspaceStatus::Active, WorkspaceStatus::Active),
    ];
    for (to, was) in steps {
        let switch = team::switch_workspace(&w.conn, ws, to)
            .await
            .expect("switch");
        assert_eq!((switch.workspace.status, switch.was), (to, was));
        let stored = holdfast_domain::reads::workspace(&w.conn, ws)
            .await
            .expect("read")
            .expect("workspace");
        assert_eq!(stored.status, to);
    }
    let err = team::switch_workspace(
        &w.conn,
        holdfast_domain::WorkspaceId::new(),
        WorkspaceStatus::Suspended,
    )
    .await
    .expect_err("no such workspace");
    assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn managers_rename_price_and_archive_projects() {
    let w = World::new().await;
    let change = ProjectChange {
        name: Some("Seaview Phase 2".into()),
        currency: Some(Some("INR".into())),
        archived: Some(true),
    };
    let project = team::update_project(&w.conn, &w.manager, w.project, &change)
        .await
        .expect("update");
    assert_eq!(project.name, "Seaview Phase 2");
    assert_eq!(project.currency.as_deref(), Some("INR"));
    assert!(project.archived);

    // A currency removed; the rest left as it was.
    let change = ProjectChange {
        currency: Some(None),
        ..ProjectChange::default()
    };
    let project = team::update_project(&w.conn, &w.admin, w.project, &change)
        .await
        .expect("clear the currency");
    assert_eq!(project.currency, None);
    assert_eq!(project.name, "Seaview Phase 2");
    assert!(project.archived);

    for bad in ["inr", "EURO", "E1R", "", "€"] {
        let change = ProjectChange {
            currency: Some(Some(bad.into())),
            ..ProjectChange::default()
        };
        let err = team::update_project(&w.conn, &w.manager, w.project, &change)
            .await
            .expect_err("bad currency");
        assert!(
            matches!(err, DomainError::InvalidInput(_)),
            "{bad:?}: {err:?}"
        );
    }

    let agent = w.agent().await;
    let err = team::update_project(&w.conn, &agent, w.project, &ProjectChange::default())
        .await
        .expect_err("an agent");
    assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
    let other = Workspace::create(&w.conn, "Other Homes").await;
    let change = ProjectChange {
        archived: Some(true),
        ..ProjectChange::default()
    };
    let err = team::update_project(&w.conn, &w.manager, other.project, &change)
        .await
        .expect_err("another workspace's project");
    assert!(matches!(err, DomainError::NotFound("project")), "{err:?}");
}

/// The schema refuses a currency of the wrong form even from SQL.
#[tokio::test]
async fn the_schema_refuses_a_currency_that_is_not_three_upper_case_letters() {
    let w = World::new().await;
    let err = w
        .conn
        .execute_unprepared(&format!(
            "UPDATE project SET currency = 'eur' WHERE id = '{}'",
            w.project
        ))
        .await
        .expect_err("refused");
    assert_eq!(
        holdfast_domain::error::constraint(&err).as_deref(),
        Some("project_currency_iso_4217")
    );
}
