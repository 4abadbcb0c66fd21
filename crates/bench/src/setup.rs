//! Seeding the bench workspace fast: the workspace and project through the
//! domain's directory functions (so they are made the way the server makes
//! them), and the 100,000 plots and the agents in one SQL statement each,
//! which takes seconds where 100 `addProperties` calls would take minutes.

use holdfast_domain::entities::Role;
use holdfast_domain::tally::Bulk;
use holdfast_domain::{Actor, ProjectId, directory};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// What `seed` made: ids only; tokens are minted separately.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub workspace_id: String,
    pub project_id: String,
    pub plots: u64,
    /// Agents in the order of their number (agent 1 first).
    pub agent_ids: Vec<String>,
}

/// A workspace with one project of `plots` plots and `agents` sales agents.
pub async fn seed(db: &DatabaseConnection, plots: u64, agents: u32) -> anyhow::Result<Seeded> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let (ws, admin) = directory::create_workspace(
        db,
        &format!("holdfast bench {stamp}"),
        "admin@bench.holdfast.test",
        "Bench Admin",
    )
    .await?;
    let actor = Actor {
        user_id: admin.id,
        workspace_id: ws.id,
        role: Role::Admin,
    };
    let project = directory::create_project(db, &actor, "Bench Estate").await?;
    let ws_id = ws.id.to_string();
    let project_id = project.id.to_string();
    add_plots(db, &ws_id, &project_id, plots).await?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO app_user (id, workspace_id, email, name, role) \
             SELECT gen_random_uuid(), $1::uuid, 'agent' || g || '@bench.holdfast.test', \
               'Agent ' || g, 'SALES_AGENT' \
             FROM generate_series(1, $2::int) g \
             RETURNING id::text AS id, email",
            [ws_id.clone().into(), i32::try_from(agents)?.into()],
        ))
        .await?;
    let mut numbered = rows
        .iter()
        .map(|row| {
            let id: String = row.try_get("", "id")?;
            let email: String = row.try_get("", "email")?;
            let n: u32 = email
                .trim_start_matches("agent")
                .split('@')
                .next()
                .unwrap_or_default()
                .parse()
                .unwrap_or(u32::MAX);
            Ok((n, id))
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    numbered.sort();
    // Fresh statistics, so the first queries of a run are planned on 100k
    // rows (add_plots analyzed the plots).
    db.execute_unprepared("ANALYZE app_user").await?;
    Ok(Seeded {
        workspace_id: ws_id,
        project_id,
        plots,
        agent_ids: numbered.into_iter().map(|(_, id)| id).collect(),
    })
}

/// Another project of `plots` plots in the bench workspace (`launch` opens
/// one of 200), made by the workspace's admin through the domain as `seed`
/// makes its own; returns its id.
pub async fn add_project(
    db: &DatabaseConnection,
    workspace_id: &str,
    name: &str,
    plots: u64,
) -> anyhow::Result<String> {
    let admin = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id::text AS id FROM app_user WHERE workspace_id = $1::uuid AND role = 'ADMIN' \
             ORDER BY created_at LIMIT 1",
            [workspace_id.to_owned().into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bench workspace {workspace_id} has no admin"))?
        .try_get::<String>("", "id")?;
    let actor = Actor {
        user_id: admin.parse()?,
        workspace_id: workspace_id.parse()?,
        role: Role::Admin,
    };
    let project = directory::create_project(db, &actor, name).await?;
    let project_id = project.id.to_string();
    add_plots(db, workspace_id, &project_id, plots).await?;
    Ok(project_id)
}

/// A transaction for a bulk change of the plots of `project_id`: the
/// project's tally is counted once, as it commits, not row by row.
pub async fn bulk(db: &DatabaseConnection, project_id: &str) -> anyhow::Result<Bulk> {
    Ok(Bulk::begin(db, ProjectId(project_id.parse()?)).await?)
}

/// `plots` AVAILABLE plots, P-000001 on, in one statement.
async fn add_plots(
    db: &DatabaseConnection,
    workspace_id: &str,
    project_id: &str,
    plots: u64,
) -> anyhow::Result<()> {
    let bulk = bulk(db, project_id).await?;
    bulk.txn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO property (id, workspace_id, project_id, code) \
         SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'P-' || lpad(g::text, 6, '0') \
         FROM generate_series(1, $3::bigint) g",
            [
                workspace_id.to_owned().into(),
                project_id.to_owned().into(),
                i64::try_from(plots)?.into(),
            ],
        ))
        .await?;
    bulk.commit().await?;
    db.execute_unprepared("ANALYZE property").await?;
    Ok(())
}

/// Ids of the project's plots that read AVAILABLE now, in random order.
pub async fn available_plots(
    db: &DatabaseConnection,
    project_id: &str,
) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id::text AS id FROM rules.property_now WHERE project_id = $1::uuid AND status = 'AVAILABLE'",
            [project_id.to_owned().into()],
        ))
        .await?;
    let mut ids = rows
        .iter()
        .map(|r| r.try_get::<String>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    fastrand::shuffle(&mut ids);
    Ok(ids)
}

/// Puts every plot of the project back to AVAILABLE and forgets its
/// reservations, so that the next run reserves available plots only. Only
/// for the throw-away bench database: the history is deleted.
pub async fn reset_project(db: &DatabaseConnection, project_id: &str) -> anyhow::Result<()> {
    let project = project_id.to_owned();
    let bulk = bulk(db, project_id).await?;
    bulk.txn().execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM reservation WHERE property_id IN (SELECT id FROM property WHERE project_id = $1::uuid)",
        [project.clone().into()],
    ))
    .await?;
    bulk.txn().execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE property SET status = 'AVAILABLE', reserved_by_id = NULL, reserved_until = NULL \
         WHERE project_id = $1::uuid AND status <> 'AVAILABLE'",
        [project.into()],
    ))
    .await?;
    bulk.commit().await?;
    // Dead rows of the last run would slow the next one down, and a
    // checkpoint falling inside one run (full-page writes after it) would
    // tax that run alone: start each run from the same clean state.
    vacuum(db).await?;
    db.execute_unprepared("CHECKPOINT").await?;
    Ok(())
}

/// `VACUUM ANALYZE` of the tables a run writes: the reservations, the plots,
/// the tally rows every change of a plot's status updates (64 rows of a
/// project, updated tens of thousands of times a run), and the workspace and
/// agents' rows that every insert of a reservation locks through its foreign
/// keys. One statement per call, as VACUUM refuses to run inside the
/// implicit transaction of a multi-statement string.
pub async fn vacuum(db: &DatabaseConnection) -> anyhow::Result<()> {
    for table in [
        "reservation",
        "property",
        "plot_tally",
        "workspace",
        "app_user",
    ] {
        db.execute_unprepared(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    Ok(())
}
