//! Model-based test: random sequences of reserve, release, extend, convert,
//! expire, sweep and clock advances by several agents, checked after every
//! step against a small model of the rules and against the audit in SQL.

use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::reservations::{self, ExpireOutcome};
use holdfast_domain::{Actor, DomainError, Policy, PropertyId, ReservationId};
use std::sync::Arc;

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::reservation;
use holdfast_testkit::TestDb;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::helpers::World;

const AGENTS: usize = 3;
const PLOTS: usize = 4;
const LIMIT: u32 = 2;
const MAX_EXTENSIONS: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    Reserve {
        agent: usize,
        plot: usize,
    },
    /// By its agent, or by the manager, or by another agent (refused).
    Release {
        res: usize,
        by: By,
    },
    Extend {
        res: usize,
        by_manager: bool,
    },
    Convert {
        res: usize,
        by: By,
    },
    /// The release job, with the current version or the one before.
    Expire {
        res: usize,
        stale: bool,
    },
    Sweep,
    /// The clock passes this reservation's end.
    Lapse {
        res: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum By {
    Owner,
    Manager,
    OtherAgent,
}

fn op() -> impl Strategy<Value = Op> {
    let by = prop_oneof![Just(By::Owner), Just(By::Manager), Just(By::OtherAgent)];
    prop_oneof![
        4 => (0..AGENTS, 0..PLOTS).prop_map(|(agent, plot)| Op::Reserve { agent, plot }),
        2 => (0..8usize, by.clone()).prop_map(|(res, by)| Op::Release { res, by }),
        2 => (0..8usize, any::<bool>()).prop_map(|(res, by_manager)| Op::Extend { res, by_manager }),
        1 => (0..8usize, by).prop_map(|(res, by)| Op::Convert { res, by }),
        2 => (0..8usize, any::<bool>()).prop_map(|(res, stale)| Op::Expire { res, stale }),
        1 => Just(Op::Sweep),
        3 => (0..8usize).prop_map(|res| Op::Lapse { res }),
    ]
}

/// What the model knows of one reservation.
#[derive(Debug, Clone)]
struct ModelRes {
    id: ReservationId,
    agent: usize,
    plot: usize,
    status: ReservationStatus,
    version: i32,
    extensions: u32,
    lapsed: bool,
}

impl ModelRes {
    fn holding(&self) -> bool {
        self.status == ReservationStatus::Active && !self.lapsed
    }
}

#[derive(Debug, Default)]
struct Model {
    res: Vec<ModelRes>,
    sold: [bool; PLOTS],
}

impl Model {
    /// The ACTIVE (possibly lapsed) reservation of a plot.
    fn active_on(&self, plot: usize) -> Option<usize> {
        self.res
            .iter()
            .position(|r| r.plot == plot && r.status == ReservationStatus::Active)
    }

    fn status_now(&self, plot: usize) -> PropertyStatus {
        if self.sold[plot] {
            PropertyStatus::Sold
        } else if self.active_on(plot).is_some_and(|i| self.res[i].holding()) {
            PropertyStatus::Reserved
        } else {
            PropertyStatus::Available
        }
    }
}

/// A short name for what came back, to compare with the model's expectation.
fn kind<T>(r: &Result<T, DomainError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(DomainError::PropertyUnavailable { .. }) => "unavailable",
        Err(DomainError::ReservationLimitReached { .. }) => "limit",
        Err(DomainError::ExtensionLimitReached { .. }) => "extension-limit",
        Err(DomainError::ReservationNotActive { .. }) => "not-active",
        Err(DomainError::Forbidden(_)) => "forbidden",
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

async fn run(db: Arc<TestDb>, conn: DatabaseConnection, ops: Vec<Op>) {
    let mut w = World::in_database(db, conn).await;
    w.policy = Policy {
        max_active_per_agent: LIMIT,
        max_extensions: MAX_EXTENSIONS,
        ..Policy::default()
    };
    let agents: Vec<Actor> = w.agents(AGENTS).await;
    let plots: Vec<PropertyId> = w.plots(PLOTS).await;
    let mut m = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match op {
            Op::Reserve { agent, plot } => {
                let held = m.active_on(plot).is_some_and(|i| m.res[i].holding());
                let expected = if m.sold[plot] || held {
                    "unavailable"
                } else if m
                    .res
                    .iter()
                    .filter(|r| r.agent == agent && r.holding())
                    .count()
                    >= LIMIT as usize
                {
                    "limit"
                } else {
                    "ok"
                };
                let written =
                    reservations::reserve(&w.conn, &w.policy, &agents[agent], plots[plot]).await;
                let got = written.result;
                assert_eq!(kind(&got), expected, "{ctx}");
                if let Ok(r) = got {
                    if let Some(old) = m.active_on(plot) {
                        let taken_over = written.effects.ended.first();
                        assert_eq!(
                            taken_over.map(|t| t.reservation.id),
                            Some(m.res[old].id),
                            "{ctx}"
                        );
                        m.res[old].status = ReservationStatus::Expired;
                    }
                    m.res.push(ModelRes {
                        id: r.reservation.id,
                        agent,
                        plot,
                        status: ReservationStatus::Active,
                        version: 1,
                        extensions: 0,
                        lapsed: false,
                    });
                }
            }
            Op::Release { res, by } | Op::Convert { res, by } if !m.res.is_empty() => {
                let i = res % m.res.len();
                let r = m.res[i].clone();
                let actor = match by {
                    By::Owner => agents[r.agent],
                    By::Manager => w.manager,
                    By::OtherAgent => agents[(r.agent + 1) % AGENTS],
                };
                let converting = matches!(op, Op::Convert { .. });
                let expected = if matches!(by, By::OtherAgent) {
                    "forbidden"
                } else if !r.holding() {
                    "not-active"
                } else {
                    "ok"
                };
                let got = if converting {
                    reservations::convert(&w.conn, &w.policy, &actor, r.id)
                        .await
                        .result
                } else {
                    reservations::release(&w.conn, &w.policy, &actor, r.id)
                        .await
                        .result
                };
                assert_eq!(kind(&got), expected, "{ctx}");
                if got.is_ok() {
                    if converting {
                        m.res[i].status = ReservationStatus::Converted;
                        m.sold[r.plot] = true;
                    } else {
                        m.res[i].status = ReservationStatus::Released;
                    }
                }
            }
            Op::Extend { res, by_manager } if !m.res.is_empty() => {
                let i = res % m.res.len();
                let r = m.res[i].clone();
                let actor = if by_manager {
                    w.manager
                } else {
                    agents[r.agent]
                };
                let expected = if !by_manager {
                    "forbidden"
                } else if !r.holding() {
                    "not-active"
                } else if r.extensions >= MAX_EXTENSIONS {
                    "extension-limit"
                } else {
                    "ok"
                };
                let got = reservations::extend(&w.conn, &w.policy, &actor, r.id)
                    .await
                    .result;
                assert_eq!(kind(&got), expected, "{ctx}");
                if got.is_ok() {
                    m.res[i].extensions += 1;
                    m.res[i].version += 1;
                }
            }
            Op::Expire { res, stale } if !m.res.is_empty() => {
                let i = res % m.res.len();
                let r = m.res[i].clone();
                let version = if stale { r.version - 1 } else { r.version };
                let got =
                    reservations::expire(&w.conn, &w.policy, agents[0].workspace_id, r.id, version)
                        .await
                        .result
                        .expect("expire never fails here");
                let ok = match got {
                    ExpireOutcome::NotActive(status) => {
                        r.status != ReservationStatus::Active && status == r.status
                    }
                    ExpireOutcome::StaleVersion { current } => {
                        r.status == ReservationStatus::Active
                            && version != r.version
                            && current == r.version
                    }
                    ExpireOutcome::NotDue { .. } => {
                        r.status == ReservationStatus::Active && version == r.version && !r.lapsed
                    }
                    ExpireOutcome::Expired(_) => {
                        r.status == ReservationStatus::Active && version == r.version && r.lapsed
                    }
                    ExpireOutcome::NotFound => false,
                };
                assert!(ok, "{ctx}: got {got:?} for {r:?}");
                if matches!(got, ExpireOutcome::Expired(_)) {
                    m.res[i].status = ReservationStatus::Expired;
                }
            }
            Op::Sweep => {
                // Earlier cases' workspaces share the database: count only ours.
                let ws = w.admin.workspace_id;
                let mut ours = 0;
                reservations::sweep(&w.conn, &w.policy, 2, |batch| {
                    ours += batch
                        .ended
                        .iter()
                        .filter(|h| h.reservation.workspace_id == ws)
                        .count() as u64;
                })
                .await
                .expect("sweep");
                let mut due = 0;
                for r in m.res.iter_mut() {
                    if r.status == ReservationStatus::Active && r.lapsed {
                        r.status = ReservationStatus::Expired;
                        due += 1;
                    }
                }
                assert_eq!(ours, due, "{ctx}");
            }
            Op::Lapse { res } if !m.res.is_empty() => {
                let i = res % m.res.len();
                if m.res[i].status == ReservationStatus::Active {
                    w.lapse(m.res[i].id).await;
                    m.res[i].lapsed = true;
                }
            }
            // An operation on a reservation before there is any: nothing to do.
            _ => continue,
        }

        let now =
            holdfast_domain::reads::properties_by_ids(&w.conn, w.admin.workspace_id, plots.clone())
                .await
                .expect("read plots");
        for (i, plot) in plots.iter().enumerate() {
            let read = now.iter().find(|p| p.id == *plot).expect("plot");
            assert_eq!(read.status, m.status_now(i), "{ctx}: plot {i}");
        }
        let stored = holdfast_domain::entities::Reservation::find()
            .filter(reservation::Column::WorkspaceId.eq(w.admin.workspace_id))
            .all(&w.conn)
            .await
            .expect("reservations");
        assert_eq!(stored.len(), m.res.len(), "{ctx}");
        for r in &m.res {
            let s = stored.iter().find(|s| s.id == r.id).expect("stored");
            assert_eq!(
                (s.status, s.version),
                (r.status, r.version),
                "{ctx}: reservation {r:?}"
            );
        }
        let counts = w.counts().await;
        let available = (0..PLOTS)
            .filter(|p| m.status_now(*p) == PropertyStatus::Available)
            .count();
        assert_eq!(counts.available, available as i64, "{ctx}: availablePlots");
        w.check().await;
    }
}

/// Runs the cases in one database (a new workspace each), inside one runtime:
/// a database per case would cost more than the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_by_several_agents_always_match_the_model() {
    let db = Arc::new(TestDb::new().await);
    let conn = connect(&db.url, &PoolSettings::default())
        .await
        .expect("connect");
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        // Failures print the minimal case; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
            handle.block_on(run(db.clone(), conn.clone(), ops));
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
