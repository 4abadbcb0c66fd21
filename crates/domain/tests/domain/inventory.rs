//! The inventory: prices and the price a hold keeps, codes unique without
//! regard to case (and the ones kept from before), withdrawing and
//! restoring plots (and a withdrawal racing a reserve), archived projects,
//! and imports (all or none).

use std::sync::Arc;

use holdfast_domain::audit::audit;
use holdfast_domain::directory;
use holdfast_domain::entities::queue_entry::Model as QueueEntry;
use holdfast_domain::entities::reservation::Model as Reservation;
use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::inventory::{
    self, ImportRow, Imported, MAX_IMPORT_ROWS, Price, PropertyUpdate,
};
use holdfast_domain::line::{self, JoinRequest};
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{Actor, DomainError, DomainResult, PropertyId, Written};
use holdfast_migrations::{Migrator, MigratorTrait};
use holdfast_testkit::{TestDb, Workspace};
use sea_orm::ConnectionTrait;
use tokio::sync::Barrier;

use crate::helpers::World;

fn price(text: &str) -> Price {
    Price::parse(text).expect("a price")
}

async fn set_price(w: &World, who: &Actor, plot: PropertyId, to: Option<&str>) -> DomainResult<()> {
    let update = PropertyUpdate {
        code: None,
        price: Some(to.map(price)),
    };
    inventory::update_property(&w.conn, who, plot, &update)
        .await
        .result
        .map(|_| ())
}

async fn set_code(w: &World, who: &Actor, plot: PropertyId, code: &str) -> DomainResult<()> {
    let update = PropertyUpdate {
        code: Some(code.to_owned()),
        price: None,
    };
    inventory::update_property(&w.conn, who, plot, &update)
        .await
        .result
        .map(|_| ())
}

/// A hold of `plot` by `agent`, which must be had.
async fn hold(w: &World, agent: &Actor, plot: PropertyId) -> Reservation {
    reserve(&w.conn, &w.policy, agent, plot)
        .await
        .result
        .expect("reserve")
        .reservation
}

/// `agent` joins the line for `plot`, for nobody in particular.
async fn join(w: &World, agent: &Actor, plot: PropertyId) -> DomainResult<QueueEntry> {
    let request = JoinRequest {
        property_id: plot,
        buyer: None,
    };
    line::join_queue(&w.conn, &w.policy, agent.into(), &request)
        .await
        .result
}

fn bad_input(result: DomainResult<impl std::fmt::Debug>) -> String {
    match result {
        Err(DomainError::InvalidInput(message)) => message,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hold_keeps_the_price_its_plot_had_when_it_began_whatever_comes_after() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    set_price(&w, &w.manager, plot, Some("12500000.00"))
        .await
        .expect("price");
    assert_eq!(
        w.property_now(plot).await.price.as_deref(),
        Some("12500000.00")
    );

    let held = hold(&w, &agent, plot).await;
    assert_eq!(held.price_at_reservation.as_deref(), Some("12500000.00"));

    // A change of price while the hold runs leaves the hold's alone.
    set_price(&w, &w.admin, plot, Some("13000000.5"))
        .await
        .expect("new price");
    assert_eq!(
        w.property_now(plot).await.price.as_deref(),
        Some("13000000.50")
    );
    let stored = w.stored_reservation(held.id).await;
    assert_eq!(stored.price_at_reservation.as_deref(), Some("12500000.00"));
    w.check().await;

    // A plot without a price gives its holds none.
    let unpriced = w.plot().await;
    let unpriced_hold = hold(&w, &agent, unpriced).await;
    assert_eq!(unpriced_hold.price_at_reservation, None);
    w.check().await;
}

#[tokio::test]
async fn a_takeover_and_a_promotion_copy_the_price_too() {
    let w = World::new().await;
    let agents = w.agents(3).await;
    let plot = w.plot().await;
    set_price(&w, &w.manager, plot, Some("900.10"))
        .await
        .expect("price");
    let first = hold(&w, &agents[0], plot).await;
    set_price(&w, &w.manager, plot, Some("950.00"))
        .await
        .expect("price");

    // A lapsed hold taken over by another reserve: the new hold has today's price.
    w.lapse(first.id).await;
    let taken = hold(&w, &agents[1], plot).await;
    assert_eq!(taken.price_at_reservation.as_deref(), Some("950.00"));

    // The next in line, promoted when that hold is released.
    let waiting = join(&w, &agents[2], plot).await.expect("join");
    set_price(&w, &w.manager, plot, Some("1000"))
        .await
        .expect("price");
    let released = reservations::release(&w.conn, &w.policy, &agents[1], taken.id).await;
    let promoted = released
        .effects
        .started
        .iter()
        .find(|h| h.reservation.queue_entry_id == Some(waiting.id))
        .expect("the line moved");
    assert_eq!(
        promoted.reservation.price_at_reservation.as_deref(),
        Some("1000.00")
    );
    assert_eq!(promoted.property_price.as_deref(), Some("1000.00"));
    // Each hold kept its own.
    let mut history = Vec::new();
    for id in [first.id, taken.id, promoted.reservation.id] {
        history.push(w.stored_reservation(id).await.price_at_reservation);
    }
    assert_eq!(
        history,
        [
            Some("900.10".to_owned()),
            Some("950.00".to_owned()),
            Some("1000.00".to_owned())
        ]
    );
    w.check().await;
}

#[tokio::test]
async fn managers_and_admins_change_codes_and_prices_agents_may_not_and_others_cannot_see() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    assert!(matches!(
        set_price(&w, &agent, plot, Some("1")).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        set_code(&w, &agent, plot, "Z-1").await,
        Err(DomainError::Forbidden(_))
    ));
    set_code(&w, &w.manager, plot, "Z-1")
        .await
        .expect("manager");
    set_price(&w, &w.admin, plot, Some("250000"))
        .await
        .expect("admin");
    let now = w.property_now(plot).await;
    assert_eq!(
        (now.code.as_str(), now.price.as_deref()),
        ("Z-1", Some("250000.00"))
    );

    // A null price takes it away; a code may not be blank.
    set_price(&w, &w.manager, plot, None)
        .await
        .expect("no price");
    assert_eq!(w.property_now(plot).await.price, None);
    bad_input(set_code(&w, &w.manager, plot, " ").await);

    // Another workspace's manager finds nothing.
    let other = Workspace::create(&w.conn, "Other Homes").await;
    assert!(matches!(
        set_price(&w, &other.manager, plot, Some("1")).await,
        Err(DomainError::NotFound("property"))
    ));
    assert!(matches!(
        inventory::withdraw(&w.conn, &w.policy, &other.manager, plot)
            .await
            .result,
        Err(DomainError::NotFound("property"))
    ));
    assert!(matches!(
        inventory::restore(&w.conn, &other.admin, plot).await.result,
        Err(DomainError::NotFound("property"))
    ));
    let csv = "code\nX-1\n";
    assert!(matches!(
        inventory::import_properties(&w.conn, &other.manager, w.project, csv)
            .await
            .result,
        Err(DomainError::NotFound("project"))
    ));
    assert!(matches!(
        inventory::import_properties(&w.conn, &agent, w.project, csv)
            .await
            .result,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        inventory::withdraw(&w.conn, &w.policy, &agent, plot)
            .await
            .result,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        inventory::restore(&w.conn, &agent, plot).await.result,
        Err(DomainError::Forbidden(_))
    ));
    assert_eq!(w.property_now(plot).await.code, "Z-1");
    w.check().await;
}

#[tokio::test]
async fn codes_are_unique_per_project_without_regard_to_case() {
    let w = World::new().await;
    let plots = w.plots(2).await;
    let first = w.property_now(plots[0]).await.code;
    let lower = first.to_lowercase();

    // Renaming onto another plot's code, in any case, names the code.
    let refused = bad_input(set_code(&w, &w.manager, plots[1], &lower).await);
    assert!(refused.contains(&format!("{lower:?}")), "{refused}");
    // Changing only the case of a plot's own code is fine.
    set_code(&w, &w.manager, plots[0], &lower)
        .await
        .expect("own code");

    // addProperties obeys the same rule, within the call and against the project.
    let added = |codes: &[&str]| {
        let codes: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
        let (conn, manager, project) = (w.conn.clone(), w.manager, w.project);
        async move { directory::add_properties(&conn, &manager, project, &codes).await }
    };
    let refused = bad_input(added(&[&first.to_uppercase()]).await);
    assert!(refused.contains("already in this project"), "{refused}");
    let refused = bad_input(added(&["Q-1", "q-1"]).await);
    assert!(refused.contains("more than once"), "{refused}");
    added(&["Q-1"]).await.expect("a new code");

    // And so does the schema, whatever the code above does.
    let err = w
        .conn
        .execute_unprepared(&format!(
            "INSERT INTO property (id, workspace_id, project_id, code) VALUES (gen_random_uuid(), '{}', '{}', 'q-1')",
            w.admin.workspace_id, w.project
        ))
        .await
        .expect_err("a case clash");
    assert_eq!(
        holdfast_domain::error::constraint(&err).as_deref(),
        Some("property_code_unique_per_project_ci")
    );
    w.check().await;
}

/// Data from before the rule: codes of one project that differ only in
/// case. The migration keeps them (and says so), and refuses new clashes.
#[tokio::test]
async fn the_migration_keeps_existing_case_duplicates_and_refuses_new_clashes() {
    let db = Arc::new(TestDb::new().await);
    let w = World::in_database(db.clone(), db.connect().await).await;
    let ws = w.admin.workspace_id;
    // Back to the schema before the inventory migration (the rules, which
    // read its columns, go first), then the data it must cope with.
    w.sql("DROP SCHEMA rules CASCADE").await;
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let mine = names
        .iter()
        .position(|n| n == "m20261125_000004_inventory")
        .expect("the inventory migration");
    Migrator::down(&w.conn, Some((names.len() - mine) as u32))
        .await
        .expect("down");
    for (id, code) in [
        ("00000000-0000-7000-8000-000000000001", "A-1"),
        ("00000000-0000-7000-8000-000000000002", "a-1"),
        ("00000000-0000-7000-8000-000000000003", "A-2"),
    ] {
        w.sql(&format!(
            "INSERT INTO property (id, workspace_id, project_id, code) VALUES ('{id}', '{ws}', '{}', '{code}')",
            w.project
        ))
        .await;
    }
    holdfast_migrations::migrate(&w.conn)
        .await
        .expect("the migration goes through");
    assert_eq!(
        w.count("SELECT count(*) FROM property WHERE code_grandfathered")
            .await,
        1,
        "every clashing code but the oldest of its group is kept aside"
    );

    // Both stay, and read as they were.
    let a1: PropertyId = "00000000-0000-7000-8000-000000000001".parse().expect("id");
    let a1_lower: PropertyId = "00000000-0000-7000-8000-000000000002".parse().expect("id");
    let a2: PropertyId = "00000000-0000-7000-8000-000000000003".parse().expect("id");
    assert_eq!(w.property_now(a1_lower).await.code, "a-1");

    // No new clash with either of them: not by adding, not by renaming.
    let codes = vec!["A-1".to_owned()];
    bad_input(directory::add_properties(&w.conn, &w.manager, w.project, &codes).await);
    bad_input(set_code(&w, &w.manager, a2, "a-1").await);

    // The oldest renamed away, the kept one stands for the code: still no clash.
    set_code(&w, &w.manager, a1, "A-9").await.expect("rename");
    bad_input(set_code(&w, &w.manager, a2, "A-1").await);
    // The kept one renamed too: the code is free.
    set_code(&w, &w.manager, a1_lower, "A-8")
        .await
        .expect("rename");
    set_code(&w, &w.manager, a2, "a-1").await.expect("free now");
    w.check().await;
}

#[tokio::test]
async fn a_withdrawn_plot_counts_in_total_only_and_cannot_be_reserved_or_queued_for() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plots = w.plots(3).await;
    let plot = plots[0];
    let withdrawn = inventory::withdraw(&w.conn, &w.policy, &w.manager, plot).await;
    assert_eq!(withdrawn.result.expect("withdraw"), plot);
    let change = &withdrawn.effects.changed;
    assert_eq!(change.len(), 1, "{change:?}");
    assert_eq!(
        (change[0].previous_status, change[0].status),
        (PropertyStatus::Available, PropertyStatus::Withdrawn)
    );
    assert_eq!(w.property_now(plot).await.status, PropertyStatus::Withdrawn);
    let counts = w.counts().await;
    assert_eq!(
        (counts.total, counts.available, counts.withdrawn),
        (3, 2, 1)
    );

    let refused = reserve(&w.conn, &w.policy, &agent, plot).await.result;
    assert!(
        matches!(
            refused,
            Err(DomainError::PropertyUnavailable {
                status: PropertyStatus::Withdrawn,
                reserved_until: None,
                project_archived: false,
            })
        ),
        "{refused:?}"
    );
    assert!(
        refused
            .expect_err("refused")
            .to_string()
            .contains("WITHDRAWN")
    );
    let joined = join(&w, &agent, plot).await;
    assert!(matches!(
        joined,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Withdrawn,
            ..
        })
    ));

    // Twice is harmless, and changes nothing more.
    let again = inventory::withdraw(&w.conn, &w.policy, &w.admin, plot).await;
    assert_eq!(again.result.expect("again"), plot);
    assert!(again.effects.is_empty());
    w.check().await;

    // Restored: AVAILABLE again, and reservable.
    let restored = inventory::restore(&w.conn, &w.manager, plot).await;
    restored.result.expect("restore");
    assert_eq!(
        (
            restored.effects.changed[0].previous_status,
            restored.effects.changed[0].status
        ),
        (PropertyStatus::Withdrawn, PropertyStatus::Available)
    );
    assert!(
        inventory::restore(&w.conn, &w.admin, plot)
            .await
            .effects
            .is_empty()
    );
    assert_eq!(w.counts().await.available, 3);
    let held = reserve(&w.conn, &w.policy, &agent, plot)
        .await
        .result
        .expect("reservable again");
    w.check().await;

    // A held plot is neither withdrawn nor restored.
    let refused = inventory::withdraw(&w.conn, &w.policy, &w.manager, plot)
        .await
        .result;
    match refused {
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Reserved,
            reserved_until,
            ..
        }) => assert_eq!(reserved_until, Some(held.reservation.expires_at)),
        other => panic!("expected PropertyUnavailable, got {other:?}"),
    }
    let message = bad_input(inventory::restore(&w.conn, &w.manager, plot).await.result);
    assert!(message.contains("RESERVED"), "{message}");
    // Nor a sold one.
    reservations::convert(&w.conn, &w.policy, &agent, held.reservation.id)
        .await
        .result
        .expect("sold");
    assert!(matches!(
        inventory::withdraw(&w.conn, &w.policy, &w.manager, plot)
            .await
            .result,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Sold,
            ..
        })
    ));
    w.check().await;
}

#[tokio::test]
async fn withdrawing_a_plot_whose_hold_lapsed_ends_that_hold_first() {
    let w = World::new().await;
    let agents = w.agents(2).await;
    let plots = w.plots(2).await;

    // Nobody waits: the lapsed hold is taken over and the plot withdrawn.
    let lapsed = hold(&w, &agents[0], plots[0]).await;
    w.lapse(lapsed.id).await;
    let written = inventory::withdraw(&w.conn, &w.policy, &w.manager, plots[0]).await;
    written.result.expect("withdrawn");
    assert_eq!(written.effects.ended[0].reservation.id, lapsed.id);
    assert_eq!(
        w.stored_reservation(lapsed.id).await.status,
        ReservationStatus::Expired
    );
    assert_eq!(
        w.stored_property(plots[0]).await.status,
        PropertyStatus::Withdrawn
    );

    // Someone waits: the plot is theirs at once, so it is not withdrawn.
    let lapsing = hold(&w, &agents[0], plots[1]).await;
    join(&w, &agents[1], plots[1]).await.expect("join");
    w.lapse(lapsing.id).await;
    let written = inventory::withdraw(&w.conn, &w.policy, &w.manager, plots[1]).await;
    assert!(matches!(
        written.result,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Reserved,
            ..
        })
    ));
    assert_eq!(
        written.effects.started[0].reservation.agent_id,
        agents[1].user_id
    );
    w.check().await;
}

/// A withdrawal and a reserve of one plot at the same instant, round after
/// round: exactly one of them wins, and the plot is never both withdrawn
/// and held.
#[tokio::test]
async fn a_withdrawal_racing_a_reserve_has_exactly_one_winner() {
    let w = World::new().await;
    let agent = w.agent().await;
    const ROUNDS: usize = 60;
    let plots = w.plots(ROUNDS).await;
    let (mut withdrawals, mut reserves) = (0, 0);
    for plot in plots {
        let start = Arc::new(Barrier::new(2));
        let withdraw = {
            let (conn, policy, manager, start) =
                (w.conn.clone(), w.policy.clone(), w.manager, start.clone());
            tokio::spawn(async move {
                start.wait().await;
                inventory::withdraw(&conn, &policy, &manager, plot)
                    .await
                    .result
            })
        };
        let reserving = {
            let (conn, policy, start) = (w.conn.clone(), w.policy.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                reserve(&conn, &policy, &agent, plot).await.result
            })
        };
        let (withdrawn, reserved) = (
            withdraw.await.expect("task"),
            reserving.await.expect("task"),
        );
        let stored = w.stored_property(plot).await;
        match (withdrawn, reserved) {
            (Ok(_), Err(DomainError::PropertyUnavailable { status, .. })) => {
                assert_eq!(status, PropertyStatus::Withdrawn);
                assert_eq!(stored.status, PropertyStatus::Withdrawn);
                withdrawals += 1;
            }
            (Err(DomainError::PropertyUnavailable { status, .. }), Ok(held)) => {
                assert_eq!(status, PropertyStatus::Reserved);
                assert_eq!(stored.status, PropertyStatus::Reserved);
                reservations::release(&w.conn, &w.policy, &agent, held.reservation.id)
                    .await
                    .result
                    .expect("release, for the agent's limit");
                reserves += 1;
            }
            other => panic!("not exactly one winner: {other:?}"),
        }
    }
    println!("{withdrawals} withdrawals and {reserves} reserves won");
    assert_eq!(withdrawals + reserves, ROUNDS);
    w.check().await;
}

#[tokio::test]
async fn an_archived_projects_plots_cannot_be_reserved_but_its_holds_run_their_course() {
    let w = World::new().await;
    let agents = w.agents(2).await;
    let plots = w.plots(2).await;
    let held = hold(&w, &agents[0], plots[0]).await;
    w.sql(&format!(
        "UPDATE project SET archived = true WHERE id = '{}'",
        w.project
    ))
    .await;

    let refused = reserve(&w.conn, &w.policy, &agents[1], plots[1])
        .await
        .result;
    match refused {
        Err(
            ref e @ DomainError::PropertyUnavailable {
                status: PropertyStatus::Available,
                project_archived: true,
                ..
            },
        ) => assert!(e.to_string().contains("archived"), "{e}"),
        other => panic!("expected PropertyUnavailable, got {other:?}"),
    }
    let joined = join(&w, &agents[1], plots[0]).await;
    assert!(matches!(
        joined,
        Err(DomainError::PropertyUnavailable {
            status: PropertyStatus::Reserved,
            project_archived: true,
            ..
        })
    ));

    // The hold begun before is extended and sold as any other.
    reservations::extend(&w.conn, &w.policy, &w.manager, held.id)
        .await
        .result
        .expect("extend");
    reservations::convert(&w.conn, &w.policy, &agents[0], held.id)
        .await
        .result
        .expect("convert");
    w.check().await;
}

fn csv_of(rows: impl IntoIterator<Item = String>) -> String {
    std::iter::once("code,price".to_owned())
        .chain(rows)
        .collect::<Vec<_>>()
        .join("\n")
}

async fn import(w: &World, csv: &str) -> Written<Imported> {
    inventory::import_properties(&w.conn, &w.manager, w.project, csv).await
}

#[tokio::test]
async fn an_import_adds_new_codes_and_sets_the_prices_of_existing_ones() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plots = w.plots(2).await;
    let a0 = w.property_now(plots[0]).await.code;
    let a1 = w.property_now(plots[1]).await.code;
    let held = hold(&w, &agent, plots[1]).await;

    // An existing code in another case is the same plot; a row without a
    // price leaves an existing plot's price alone.
    let csv = format!(
        "Code,Price\n{},100.5\n{},\nN-1,2000000\nN-2,\n",
        a0.to_lowercase(),
        a1
    );
    let imported = import(&w, &csv).await.result.expect("import");
    assert_eq!(
        imported,
        Imported {
            created: 2,
            updated: 1
        }
    );
    assert_eq!(
        w.property_now(plots[0]).await.price.as_deref(),
        Some("100.50")
    );
    assert_eq!(w.property_now(plots[0]).await.code, a0);
    assert_eq!(w.property_now(plots[1]).await.price, None);
    assert_eq!(w.counts().await.total, 4);

    // Again with new prices: the held plot's hold keeps its own.
    let csv = format!("code,price\n{a0},100.50\n{a1},7\nN-1,2000000.00\n");
    let imported = import(&w, &csv).await.result.expect("import");
    assert_eq!(
        imported,
        Imported {
            created: 0,
            updated: 1
        },
        "only the prices that changed"
    );
    assert_eq!(
        w.property_now(plots[1]).await.price.as_deref(),
        Some("7.00")
    );
    assert_eq!(
        w.stored_reservation(held.id).await.price_at_reservation,
        None
    );
    w.check().await;
}

#[tokio::test]
async fn an_import_failing_on_row_9999_leaves_nothing_behind() {
    let w = World::new().await;
    let plot = w.plot().await;
    set_price(&w, &w.manager, plot, Some("5"))
        .await
        .expect("price");
    let code = w.property_now(plot).await.code;
    let rows = (1..=10_000).map(|i| match i {
        1 => format!("{code},6"),
        9_999 => format!("R-{i},\"12,5\""),
        _ => format!("R-{i},{i}.25"),
    });
    let message = bad_input(import(&w, &csv_of(rows)).await.result);
    assert_eq!(
        message,
        "line 10000: price \"12,5\" is not a decimal (write it with digits and a point, such as 12500000.00)"
    );
    assert_eq!(w.counts().await.total, 1, "nothing added");
    assert_eq!(w.property_now(plot).await.price.as_deref(), Some("5.00"));

    // 10,000 rows are taken; one more is refused, before anything changes.
    let rows = (1..=MAX_IMPORT_ROWS).map(|i| format!("R-{i},{i}"));
    let imported = import(&w, &csv_of(rows)).await.result.expect("10,000 rows");
    assert_eq!(imported.created, 10_000);
    let rows = (1..=MAX_IMPORT_ROWS + 1).map(|i| format!("S-{i},{i}"));
    let message = bad_input(import(&w, &csv_of(rows)).await.result);
    assert!(
        message.starts_with("line 10002: more than 10000 rows"),
        "{message}"
    );
    assert_eq!(w.counts().await.total, 10_001);
    w.check().await;
}

#[tokio::test]
async fn import_rows_name_their_line_and_column_when_refused() {
    let w = World::new().await;
    for (csv, expected) in [
        ("code,price\nA,-1\n", "line 2: price \"-1\" is negative"),
        (
            "code,price\nA,1.005\n",
            "line 2: price \"1.005\" has more than 2 decimals",
        ),
        (
            "code,price\nA,1e5\n",
            "line 2: price \"1e5\" is not a decimal",
        ),
        (
            "code,price\nA,1\n\nB,2\n,3\n",
            "line 5: code must not be empty",
        ),
        (
            "code\nA\n\"B\nC\"\n",
            "line 3: code must not contain control characters",
        ),
        (
            "code\nA\nb\na\n",
            "line 4: code \"a\" is given twice, also on line 2",
        ),
        ("code;price\nA;1\n", "line 1: unknown column \"code;price\""),
    ] {
        let message = bad_input(import(&w, csv).await.result);
        assert!(message.starts_with(expected), "{csv:?}: {message}");
    }
    assert_eq!(w.counts().await.total, 0);
}

/// The audit learns the inventory's invariants: it finds a withdrawn plot
/// that is held, and a hold that did not keep its plot's price.
#[tokio::test]
async fn the_audit_finds_a_held_withdrawn_plot_and_a_hold_without_its_price() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    set_price(&w, &w.manager, plot, Some("10"))
        .await
        .expect("price");
    let held = hold(&w, &agent, plot).await;
    w.check().await;
    w.sql(&format!(
        "UPDATE reservation SET price_at_reservation = NULL WHERE id = '{}'",
        held.id
    ))
    .await;
    let found: Vec<&str> = audit(&w.conn)
        .await
        .expect("audit")
        .iter()
        .map(|v| v.invariant)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("a hold keeps the price"), "{found:?}");

    // Nothing else can make a held plot WITHDRAWN (the rules refuse), so
    // the test breaks the rule in SQL, checks dropped.
    w.sql(&format!(
        "UPDATE reservation SET price_at_reservation = 10 WHERE id = '{}'; \
         ALTER TABLE property DROP CONSTRAINT chk_reserved_has_user, DROP CONSTRAINT chk_unreserved_has_no_holder; \
         UPDATE property SET status = 'WITHDRAWN' WHERE id = '{plot}'",
        held.id
    ))
    .await;
    let found: Vec<&str> = audit(&w.conn)
        .await
        .expect("audit")
        .iter()
        .map(|v| v.invariant)
        .collect();
    assert!(
        found.contains(&"a WITHDRAWN property is neither held nor waited for"),
        "{found:?}"
    );
}

#[test]
fn import_rows_carry_what_the_reader_checked() {
    let mut rows =
        inventory::CsvRows::new("code,price\nA-1,12500000.00\n".as_bytes()).expect("header");
    assert_eq!(
        rows.next_row().expect("a row"),
        Some(ImportRow {
            line: 2,
            code: "A-1".into(),
            price: Some(price("12500000.00")),
        })
    );
    assert_eq!(rows.next_row().expect("the end"), None);
}
