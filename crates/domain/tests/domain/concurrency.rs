use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use holdfast_domain::db::PoolSettings;
use holdfast_domain::entities::PropertyStatus;
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{DomainError, Policy};
use tokio::sync::Barrier;

use crate::helpers::World;

/// `n` agents reserve one plot at the same instant: exactly one wins, every
/// other one is told the property is unavailable, and the winner holds it.
/// Each call in a transaction of its own, and again with each call in one
/// round trip first (`Policy::one_round_trip`).
async fn race_for_one_plot(n: usize) {
    for one_round_trip in [false, true] {
        race_for_one_plot_sent(n, one_round_trip).await;
    }
}

async fn race_for_one_plot_sent(n: usize, one_round_trip: bool) {
    let w = World::with_pool(PoolSettings {
        // Enough connections that many transactions queue on the row lock at
        // once, few enough to leave PostgreSQL room for the tests beside this one.
        max_connections: n.min(30) as u32,
        ..PoolSettings::default()
    })
    .await;
    let agents = w.agents(n).await;
    let plot = w.plot().await;
    let start = Arc::new(Barrier::new(n));
    let policy = Policy {
        one_round_trip,
        ..w.policy.clone()
    };

    let results = join_all(agents.iter().map(|agent| {
        let (conn, policy, start) = (w.conn.clone(), policy.clone(), start.clone());
        let agent = *agent;
        tokio::spawn(async move {
            start.wait().await;
            reserve(&conn, &policy, &agent, plot)
                .await
                .result
                .map(|r| (agent, r))
        })
    }))
    .await;

    let mut winners = Vec::new();
    for result in results {
        match result.expect("task") {
            Ok((agent, _)) => winners.push(agent),
            Err(DomainError::PropertyUnavailable { status, .. }) => {
                assert_eq!(status, PropertyStatus::Reserved)
            }
            Err(other) => panic!("expected PropertyUnavailable, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one reservation");
    let p = w.stored_property(plot).await;
    assert_eq!(p.status, PropertyStatus::Reserved);
    assert_eq!(p.reserved_by_id, Some(winners[0].user_id));
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM reservation WHERE property_id = '{plot}'"
        ))
        .await,
        1
    );
    w.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_agents_racing_for_one_plot_get_exactly_one_reservation() {
    race_for_one_plot(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_agents_racing_for_one_plot_get_exactly_one_reservation() {
    race_for_one_plot(10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_agents_racing_for_one_plot_get_exactly_one_reservation() {
    race_for_one_plot(100).await;
}

/// Many agents reserve, release and convert over a few plots at once. The
/// per-agent limit is small so that it is hit often. Afterwards no plot ever
/// had two holds at once (the audit checks the whole history), and no agent
/// ever held more than the limit at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_agents_racing_over_many_plots_never_double_book_or_exceed_the_limit() {
    const AGENTS: usize = 16;
    const PLOTS: usize = 12;
    const ROUNDS: usize = 40;
    let mut w = World::with_pool(PoolSettings {
        max_connections: 20,
        ..PoolSettings::default()
    })
    .await;
    w.policy = Policy {
        max_active_per_agent: 2,
        // The limit under one-round-trip calls: the agent's row lock and the
        // count are in the one statement (the transaction path is the
        // default, raced in the tests beside this one).
        one_round_trip: true,
        ..Policy::default()
    };
    let agents = w.agents(AGENTS).await;
    let plots = w.plots(PLOTS).await;
    let start = Arc::new(Barrier::new(AGENTS));

    let tasks = agents.iter().enumerate().map(|(i, agent)| {
        let (conn, policy, start, plots, agent) = (
            w.conn.clone(),
            w.policy.clone(),
            start.clone(),
            plots.clone(),
            *agent,
        );
        tokio::spawn(async move {
            start.wait().await;
            let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
            let mut held = Vec::new();
            for round in 0..ROUNDS {
                // A cheap, deterministic spread of plots and actions per agent.
                let plot = plots[(i * 7 + round * 5) % plots.len()];
                let outcome = match reserve(&conn, &policy, &agent, plot).await.result {
                    Ok(r) => {
                        held.push(r.reservation.id);
                        "reserved"
                    }
                    Err(DomainError::PropertyUnavailable { .. }) => "unavailable",
                    Err(DomainError::ReservationLimitReached { .. }) => "limit",
                    Err(e) => panic!("unexpected error: {e:?}"),
                };
                *outcomes.entry(outcome).or_default() += 1;
                if (held.len() == 2 || round % 3 == 2)
                    && let Some(id) = held.pop()
                {
                    let ended = if round % 10 == 9 {
                        reservations::convert(&conn, &policy, &agent, id)
                            .await
                            .result
                    } else {
                        reservations::release(&conn, &policy, &agent, id)
                            .await
                            .result
                    };
                    ended.expect("end own active hold");
                }
            }
            outcomes
        })
    });
    let mut total: HashMap<&'static str, usize> = HashMap::new();
    for outcomes in join_all(tasks).await {
        for (k, v) in outcomes.expect("task") {
            *total.entry(k).or_default() += v;
        }
    }
    assert!(total.get("reserved").copied().unwrap_or(0) > 0, "{total:?}");
    assert!(
        total.get("unavailable").copied().unwrap_or(0) > 0,
        "{total:?}"
    );

    w.check().await;
    // No agent ever held more than the limit at once: count, at each start of
    // a hold, the agent's holds overlapping that instant.
    let over_limit = w
        .count(
            "SELECT count(*) FROM reservation a WHERE ( \
               SELECT count(*) FROM reservation b WHERE b.agent_id = a.agent_id \
               AND b.created_at <= a.created_at \
               AND LEAST(b.expires_at, COALESCE(b.ended_at, b.expires_at)) > a.created_at) > 2",
        )
        .await;
    assert_eq!(over_limit, 0, "an agent exceeded the limit");
}
