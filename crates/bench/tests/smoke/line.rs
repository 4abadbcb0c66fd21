//! The line behind held plots, on the real binaries (`holdfast-server` and
//! `holdfast-worker`, both with holds of 1 s and no per-agent limit): the
//! `queue` scenario for a few seconds, then the promotions measurement on 20
//! plots with a line of 3 each (the lines go on moving as the worker's holds
//! lapse), each with every check the bench makes; and the line check shown
//! to see a line that did not move when its hold ended.

use std::sync::Arc;
use std::time::Duration;

use holdfast_bench::cli::{Verdict, run_scenario};
use holdfast_bench::invariants;
use holdfast_bench::scenarios::{Scenario, Target};
use holdfast_bench::{promotions, setup};
use holdfast_domain::db::{self, PoolSettings};
use holdfast_testkit::{QueueKeys, TEST_SECRET, TestDb};

use super::count;

/// Six agents: three plots crowded in the scenario (two agents a plot); a
/// holder and three in line for each plot of the promotions.
const AGENTS: u32 = 6;
const SCENARIO: Duration = Duration::from_secs(3);
const PROMOTED_PLOTS: usize = 20;
const LINE: usize = 3;
const HOLD: &str = "1s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_move_exactly_once_per_ended_hold_under_the_queue_scenario_and_the_promotions() {
    let test_db = TestDb::new().await;
    let queue = QueueKeys::new();
    let binaries = holdfast_testkit::Target {
        database_url: test_db.url.clone(),
        redis_url: holdfast_testkit::redis_url(),
        queue: queue.name.clone(),
    };
    let server = binaries
        .server(&[
            ("HOLDFAST_RESERVATION_TTL", HOLD),
            ("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0"),
        ])
        .await;
    let worker = binaries
        .worker(
            "off",
            &["--reservation-ttl", HOLD, "--max-active-per-agent", "0"],
        )
        .await;
    let url = format!("http://{}/graphql", server.addr);
    let db = db::connect(&test_db.url, &PoolSettings::default())
        .await
        .expect("connect");
    let seeded = setup::seed(&db, 10, AGENTS).await.expect("seed");
    let clients = super::agent_clients(&seeded, TEST_SECRET, &url);
    let target = |project_id: String, plots: Vec<String>| Target {
        clients: clients.clone(),
        readers: Vec::new(),
        project_id,
        plots: Arc::new(plots),
    };

    // The scenario, with every check `holdfast-bench run` makes.
    let since = invariants::db_now(&db).await.expect("now");
    let plots = setup::available_plots(&db, &seeded.project_id)
        .await
        .expect("plots");
    let scenario = target(seeded.project_id.clone(), plots);
    let verdict = run_scenario(&db, Scenario::Queue, &scenario, Some(SCENARIO), None, None)
        .await
        .expect("queue");
    assert_eq!(verdict, Verdict::Pass);
    // Not a vacuous pass: lines moved.
    let (moves, broken) = invariants::line_moved_once(&db, &seeded.project_id, since)
        .await
        .expect("line check");
    assert!(broken.is_empty(), "{broken:?}");
    assert!(moves.with_line > 0, "the lines moved: {moves:?}");
    assert_eq!(moves.promotions, moves.with_line, "{moves:?}");
    // Holds lapsed too, and were ended (by the worker's job, or by a join's
    // takeover, which hands the plot on first).
    let lapsed = count(
        &db,
        &format!(
            "SELECT count(*) AS n FROM reservation r JOIN property p ON p.id = r.property_id \
             WHERE p.project_id = '{}' AND r.status = 'EXPIRED'",
            seeded.project_id
        ),
    )
    .await;
    assert!(lapsed > 0, "holds lapsed during the scenario: {moves:?}");

    // The promotions: every place in line becomes a hold once, after a lapse.
    let project_id = setup::add_project(
        &db,
        &seeded.workspace_id,
        "Promotions",
        PROMOTED_PLOTS as u64,
    )
    .await
    .expect("project");
    let plots = setup::available_plots(&db, &project_id)
        .await
        .expect("plots");
    let since = invariants::db_now(&db).await.expect("now");
    let (p, broken) = promotions::measure(
        &db,
        &target(project_id.clone(), plots),
        PROMOTED_PLOTS,
        LINE,
    )
    .await
    .expect("promotions");
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!((p.plots, p.count), (PROMOTED_PLOTS, PROMOTED_PLOTS));
    assert_eq!((p.still_active, p.skipped), (0, 0));
    assert!(p.p50 >= 0.0 && p.p50 <= p.p99 && p.p99 <= p.max, "{p:?}");
    assert_eq!(p.sources, [("job".to_owned(), PROMOTED_PLOTS as i64)]);
    // The worker's holds are as short: the lines went on moving, each move
    // checked the same way.
    assert!(p.moves.promotions >= PROMOTED_PLOTS as u64, "{:?}", p.moves);

    // A first hold whose end is moved by a millisecond no longer meets the
    // promotion it made: the check sees a line (the second and third places)
    // that did not move when the hold ended, and a hold from the line that
    // follows no end.
    let tampered = count(
        &db,
        &format!(
            "WITH one AS (SELECT h.id FROM reservation h JOIN queue_entry q \
               ON q.property_id = h.property_id AND q.ended_at = h.ended_at AND q.status = 'PROMOTED' \
               JOIN property p ON p.id = h.property_id \
               WHERE p.project_id = '{project_id}' AND h.queue_entry_id IS NULL LIMIT 1), \
             moved AS (UPDATE reservation SET ended_at = ended_at + interval '1 millisecond' \
               WHERE id IN (SELECT id FROM one) RETURNING 1) \
             SELECT count(*) AS n FROM moved"
        ),
    )
    .await;
    assert_eq!(tampered, 1);
    let (_, broken) = invariants::line_moved_once(&db, &project_id, since)
        .await
        .expect("line check");
    assert_eq!(broken.len(), 2, "{broken:?}");

    worker.logs.assert_no_panic("the worker");
    server.logs.assert_no_panic("the server");
}
