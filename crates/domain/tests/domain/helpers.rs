//! Test support: a workspace (holdfast-testkit's) in a database of its own,
//! and reads of what is stored.

use std::sync::Arc;

use holdfast_domain::audit::audit;
use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::{property, reservation};
use holdfast_domain::reads::{self, PlotCounts};
use holdfast_domain::{Actor, Policy, ProjectId, PropertyId, ReservationId};
use holdfast_testkit::{TestDb, Workspace};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};

/// A workspace with an admin, a manager and a project, in a database of its own.
pub struct World {
    pub conn: DatabaseConnection,
    pub workspace: Workspace,
    pub admin: Actor,
    pub manager: Actor,
    pub project: ProjectId,
    pub policy: Policy,
    // Last, so that the pool closes before the database is dropped.
    _db: Arc<TestDb>,
}

impl World {
    pub async fn new() -> World {
        Self::with_pool(PoolSettings::default()).await
    }

    pub async fn with_pool(settings: PoolSettings) -> World {
        let db = Arc::new(TestDb::new().await);
        let conn = connect(&db.url, &settings).await.expect("connect");
        Self::in_database(db, conn).await
    }

    /// A new workspace in an existing database: for tests that make many
    /// worlds, where a database per world would cost more than the test.
    pub async fn in_database(db: Arc<TestDb>, conn: DatabaseConnection) -> World {
        let workspace = Workspace::create(&conn, "Acme Homes").await;
        World {
            conn,
            admin: workspace.admin,
            manager: workspace.manager,
            project: workspace.project,
            workspace,
            policy: Policy::default(),
            _db: db,
        }
    }

    /// The URL of the world's database.
    pub fn url(&self) -> &str {
        &self._db.url
    }

    pub async fn agents(&self, n: usize) -> Vec<Actor> {
        self.workspace.agents(&self.conn, n).await
    }

    pub async fn agent(&self) -> Actor {
        self.agents(1).await.remove(0)
    }

    /// `n` new plots, coded A-00000, A-00001, ... after those of the project.
    pub async fn plots(&self, n: usize) -> Vec<PropertyId> {
        self.workspace.plots(&self.conn, self.project, "A", n).await
    }

    pub async fn plot(&self) -> PropertyId {
        self.plots(1).await.remove(0)
    }

    pub async fn sql(&self, sql: &str) {
        self.conn.execute_unprepared(sql).await.expect(sql);
    }

    /// Makes a reservation lapse, as if its hold time had run out: its end
    /// moves to just after its start, which keeps the plot's history coherent
    /// (no hold of the same plot can overlap it).
    pub async fn lapse(&self, id: ReservationId) {
        self.sql(&format!(
            "UPDATE reservation SET expires_at = created_at + interval '1 microsecond' WHERE id = '{id}'; \
             UPDATE property SET reserved_until = r.expires_at FROM reservation r \
               WHERE r.id = '{id}' AND r.status = 'ACTIVE' AND property.id = r.property_id"
        ))
        .await;
    }

    /// The stored row, not the as-of-now view.
    pub async fn stored_property(&self, id: PropertyId) -> property::Model {
        property::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .expect("query")
            .expect("property")
    }

    pub async fn stored_reservation(&self, id: ReservationId) -> reservation::Model {
        reservation::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .expect("query")
            .expect("reservation")
    }

    /// The property as every read sees it (as of now).
    pub async fn property_now(&self, id: PropertyId) -> property::Model {
        reads::properties_by_ids(&self.conn, self.admin.workspace_id, [id])
            .await
            .expect("read")
            .remove(0)
    }

    pub async fn counts(&self) -> PlotCounts {
        reads::plot_counts(&self.conn, self.admin.workspace_id, &[self.project])
            .await
            .expect("counts")[&self.project]
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .conn
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect(sql)
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }

    /// availablePlots equals the number of properties that read AVAILABLE now,
    /// and every invariant the audit checks holds.
    pub async fn check(&self) {
        let counts = self.counts().await;
        let reading_available = self
            .count(&format!(
                "SELECT count(*) FROM rules.property_now WHERE project_id = '{}' AND status = 'AVAILABLE'",
                self.project
            ))
            .await;
        assert_eq!(counts.available, reading_available, "availablePlots");
        assert_eq!(
            counts.total,
            counts.available + counts.reserved + counts.sold + counts.withdrawn,
            "counts add up"
        );
        let violations = audit(&self.conn).await.expect("audit");
        assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    }
}
