//! Model-based test: random sequences of reserve, join and leave a line,
//! release, extend, convert, expire, sweep and clock advances by several
//! agents, checked after every step against a small model of the rules and
//! against the audit in SQL. Each reserve and join goes either in one round
//! trip or in a transaction of its own, at random: the two ways agree.

use holdfast_domain::entities::queue_entry::QueueEntryStatus;
use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::line::{self, JoinRequest};
use holdfast_domain::reservations::{self, ExpireOutcome};
use holdfast_domain::{Actor, DomainError, Policy, PropertyId, QueueEntryId, ReservationId};
use std::sync::Arc;

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::{queue_entry, reservation};
use holdfast_testkit::TestDb;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::helpers::World;

const AGENTS: usize = 4;
const PLOTS: usize = 3;
const LIMIT: u32 = 2;
const MAX_EXTENSIONS: u32 = 2;
const MAX_QUEUE: u32 = 2;

#[derive(Debug, Clone)]
enum Op {
    /// Sent in one round trip (falling back to a transaction when the plot
    /// is locked), or in a transaction of its own: both must agree.
    Reserve {
        agent: usize,
        plot: usize,
        one_round_trip: bool,
    },
    Join {
        agent: usize,
        plot: usize,
        one_round_trip: bool,
    },
    /// By its agent, or by the manager, or by another agent (refused).
    Leave {
        entry: usize,
        by: By,
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
        4 => (0..AGENTS, 0..PLOTS, any::<bool>())
            .prop_map(|(agent, plot, one_round_trip)| Op::Reserve { agent, plot, one_round_trip }),
        4 => (0..AGENTS, 0..PLOTS, any::<bool>())
            .prop_map(|(agent, plot, one_round_trip)| Op::Join { agent, plot, one_round_trip }),
        1 => (0..8usize, by.clone()).prop_map(|(entry, by)| Op::Leave { entry, by }),
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
    /// Learnt from the database after the step that made it (a hold begun
    /// by a promotion is not the caller's answer).
    id: Option<ReservationId>,
    agent: usize,
    plot: usize,
    /// The queue entry it came from.
    entry: Option<usize>,
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

/// What the model knows of one place in line.
#[derive(Debug, Clone)]
struct ModelEntry {
    id: QueueEntryId,
    agent: usize,
    plot: usize,
    status: QueueEntryStatus,
}

#[derive(Debug, Default)]
struct Model {
    res: Vec<ModelRes>,
    entries: Vec<ModelEntry>,
    sold: [bool; PLOTS],
}

impl Model {
    /// The ACTIVE (possibly lapsed) reservation of a plot.
    fn active_on(&self, plot: usize) -> Option<usize> {
        self.res
            .iter()
            .position(|r| r.plot == plot && r.status == ReservationStatus::Active)
    }

    fn holder(&self, plot: usize) -> Option<usize> {
        self.active_on(plot)
            .filter(|i| self.res[*i].holding())
            .map(|i| self.res[i].agent)
    }

    fn holds_of(&self, agent: usize) -> usize {
        self.res
            .iter()
            .filter(|r| r.agent == agent && r.holding())
            .count()
    }

    /// The entries waiting for a plot, first come first served.
    fn line(&self, plot: usize) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|e| {
                self.entries[*e].plot == plot
                    && self.entries[*e].status == QueueEntryStatus::Waiting
            })
            .collect()
    }

    fn status_now(&self, plot: usize) -> PropertyStatus {
        let lapsed_with_line = self.active_on(plot).is_some() && !self.line(plot).is_empty();
        if self.sold[plot] {
            PropertyStatus::Sold
        } else if self.holder(plot).is_some() || lapsed_with_line {
            PropertyStatus::Reserved
        } else {
            PropertyStatus::Available
        }
    }

    fn begin(&mut self, agent: usize, plot: usize, entry: Option<usize>) {
        self.res.push(ModelRes {
            id: None,
            agent,
            plot,
            entry,
            status: ReservationStatus::Active,
            version: 1,
            extensions: 0,
            lapsed: false,
        });
    }

    /// The one way a hold ends: a sale closes the line, anything else hands
    /// the plot to the first in line who can hold.
    fn end(&mut self, i: usize, status: ReservationStatus) {
        self.res[i].status = status;
        let plot = self.res[i].plot;
        if status == ReservationStatus::Converted {
            self.sold[plot] = true;
            for e in self.line(plot) {
                self.entries[e].status = QueueEntryStatus::Closed;
            }
            return;
        }
        for e in self.line(plot) {
            let agent = self.entries[e].agent;
            if self.holds_of(agent) >= LIMIT as usize {
                self.entries[e].status = QueueEntryStatus::Skipped;
                continue;
            }
            self.entries[e].status = QueueEntryStatus::Promoted;
            self.begin(agent, plot, Some(e));
            return;
        }
    }

    /// What a reserve or a join does first: a lapsed hold of the plot ends.
    fn take_over(&mut self, plot: usize) {
        if let Some(i) = self.active_on(plot).filter(|i| self.res[*i].lapsed) {
            self.end(i, ReservationStatus::Expired);
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
        Err(DomainError::AlreadyQueued) => "already-queued",
        Err(DomainError::QueueFull { .. }) => "queue-full",
        Err(DomainError::InvalidInput(_)) => "not-waiting",
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

async fn run(db: Arc<TestDb>, conn: DatabaseConnection, ops: Vec<Op>) {
    let mut w = World::in_database(db, conn).await;
    w.policy = Policy {
        max_active_per_agent: LIMIT,
        max_extensions: MAX_EXTENSIONS,
        max_queue_length: MAX_QUEUE,
        ..Policy::default()
    };
    let agents: Vec<Actor> = w.agents(AGENTS).await;
    let plots: Vec<PropertyId> = w.plots(PLOTS).await;
    let mut m = Model::default();

    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        match op {
            Op::Reserve {
                agent,
                plot,
                one_round_trip,
            } => {
                let expected = if m.sold[plot] || m.holder(plot).is_some() {
                    "unavailable"
                } else {
                    m.take_over(plot);
                    match m.holder(plot) {
                        // The caller was first in line for the lapsed hold.
                        Some(holder) if holder == agent => "ok",
                        Some(_) => "unavailable",
                        None if m.holds_of(agent) >= LIMIT as usize => "limit",
                        None => {
                            m.begin(agent, plot, None);
                            "ok"
                        }
                    }
                };
                let policy = Policy {
                    one_round_trip,
                    ..w.policy.clone()
                };
                let got = reservations::reserve(&w.conn, &policy, &agents[agent], plots[plot])
                    .await
                    .result;
                assert_eq!(kind(&got), expected, "{ctx}");
                if let Ok(r) = got {
                    let i = m.active_on(plot).expect("the model's hold");
                    m.res[i].id.get_or_insert(r.reservation.id);
                    assert_eq!(m.res[i].id, Some(r.reservation.id), "{ctx}");
                }
            }
            Op::Join {
                agent,
                plot,
                one_round_trip,
            } => {
                let expected = if m.sold[plot] {
                    "unavailable"
                } else {
                    m.take_over(plot);
                    let line = m.line(plot);
                    if m.holder(plot) == Some(agent)
                        || line.iter().any(|e| m.entries[*e].agent == agent)
                    {
                        "already-queued"
                    } else if m.holder(plot).is_none() {
                        if m.holds_of(agent) >= LIMIT as usize {
                            "limit"
                        } else {
                            "promoted"
                        }
                    } else if line.len() >= MAX_QUEUE as usize {
                        "queue-full"
                    } else {
                        "waiting"
                    }
                };
                let request = JoinRequest {
                    property_id: plots[plot],
                    buyer: None,
                };
                let policy = Policy {
                    one_round_trip,
                    ..w.policy.clone()
                };
                let got = line::join_queue(&w.conn, &policy, (&agents[agent]).into(), &request)
                    .await
                    .result;
                let expected_kind = if matches!(expected, "promoted" | "waiting") {
                    "ok"
                } else {
                    expected
                };
                assert_eq!(kind(&got), expected_kind, "{ctx}");
                if let Ok(entry) = got {
                    let status = if expected == "promoted" {
                        QueueEntryStatus::Promoted
                    } else {
                        QueueEntryStatus::Waiting
                    };
                    assert_eq!(entry.status, status, "{ctx}");
                    m.entries.push(ModelEntry {
                        id: entry.id,
                        agent,
                        plot,
                        status,
                    });
                    if expected == "promoted" {
                        m.begin(agent, plot, Some(m.entries.len() - 1));
                    }
                }
            }
            Op::Leave { entry, by } if !m.entries.is_empty() => {
                let i = entry % m.entries.len();
                let e = m.entries[i].clone();
                let actor = match by {
                    By::Owner => agents[e.agent],
                    By::Manager => w.manager,
                    By::OtherAgent => agents[(e.agent + 1) % AGENTS],
                };
                let expected = match (by, e.status) {
                    (By::OtherAgent, _) => "forbidden",
                    (_, QueueEntryStatus::Waiting | QueueEntryStatus::Left) => "ok",
                    _ => "not-waiting",
                };
                let got = line::leave_queue(&w.conn, &actor, e.id).await.result;
                assert_eq!(kind(&got), expected, "{ctx}");
                if got.is_ok() {
                    m.entries[i].status = QueueEntryStatus::Left;
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
                let id = r.id.expect("known");
                let got = if converting {
                    reservations::convert(&w.conn, &w.policy, &actor, id)
                        .await
                        .result
                } else {
                    reservations::release(&w.conn, &w.policy, &actor, id)
                        .await
                        .result
                };
                assert_eq!(kind(&got), expected, "{ctx}");
                if got.is_ok() {
                    let status = if converting {
                        ReservationStatus::Converted
                    } else {
                        ReservationStatus::Released
                    };
                    m.end(i, status);
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
                let got = reservations::extend(&w.conn, &w.policy, &actor, r.id.expect("known"))
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
                let id = r.id.expect("known");
                let got =
                    reservations::expire(&w.conn, &w.policy, agents[0].workspace_id, id, version)
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
                    m.end(i, ReservationStatus::Expired);
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
                // The sweep ends lapsed holds in the order they lapsed, which
                // is the order they began (a lapse ends a hold just after its
                // start); a promotion may count against a later one's line.
                let mut due = 0;
                for i in 0..m.res.len() {
                    if m.res[i].status == ReservationStatus::Active && m.res[i].lapsed {
                        m.end(i, ReservationStatus::Expired);
                        due += 1;
                    }
                }
                assert_eq!(ours, due, "{ctx}");
            }
            Op::Lapse { res } if !m.res.is_empty() => {
                let i = res % m.res.len();
                if m.res[i].status == ReservationStatus::Active {
                    w.lapse(m.res[i].id.expect("known")).await;
                    m.res[i].lapsed = true;
                }
            }
            // An operation on a reservation or entry before there is any.
            _ => continue,
        }
        compare(&w, &mut m, &plots, &agents, &ctx).await;
    }
}

/// The database agrees with the model: every plot as it reads now, every
/// reservation and queue entry as stored, availablePlots, and the audit.
async fn compare(w: &World, m: &mut Model, plots: &[PropertyId], agents: &[Actor], ctx: &str) {
    let ws = w.admin.workspace_id;
    let entries = holdfast_domain::entities::QueueEntry::find()
        .filter(queue_entry::Column::WorkspaceId.eq(ws))
        .all(&w.conn)
        .await
        .expect("queue entries");
    assert_eq!(entries.len(), m.entries.len(), "{ctx}: queue entries");
    for e in &m.entries {
        let s = entries.iter().find(|s| s.id == e.id).expect("stored entry");
        assert_eq!(s.status, e.status, "{ctx}: entry {e:?}");
    }
    // Holds begun by promotions: their ids, from the entries they came from.
    for r in m.res.iter_mut().filter(|r| r.id.is_none()) {
        let entry = m.entries[r.entry.expect("a hold the model made from a line")].id;
        let s = entries
            .iter()
            .find(|s| s.id == entry)
            .expect("stored entry");
        r.id = Some(s.reservation_id.expect("a promoted entry names its hold"));
    }
    let stored = holdfast_domain::entities::Reservation::find()
        .filter(reservation::Column::WorkspaceId.eq(ws))
        .all(&w.conn)
        .await
        .expect("reservations");
    assert_eq!(stored.len(), m.res.len(), "{ctx}: reservations");
    for r in m.res.iter() {
        let s = stored.iter().find(|s| Some(s.id) == r.id).expect("stored");
        assert_eq!(
            (s.status, s.version, s.agent_id, s.property_id),
            (r.status, r.version, agents[r.agent].user_id, plots[r.plot]),
            "{ctx}: reservation {r:?}"
        );
    }
    let now = holdfast_domain::reads::properties_by_ids(&w.conn, ws, plots.to_vec())
        .await
        .expect("read plots");
    for (i, plot) in plots.iter().enumerate() {
        let read = now.iter().find(|p| p.id == *plot).expect("plot");
        assert_eq!(read.status, m.status_now(i), "{ctx}: plot {i}");
    }
    let counts = w.counts().await;
    let available = (0..PLOTS)
        .filter(|p| m.status_now(*p) == PropertyStatus::Available)
        .count();
    assert_eq!(counts.available, available as i64, "{ctx}: availablePlots");
    w.check().await;
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
