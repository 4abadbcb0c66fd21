use std::sync::Arc;

use holdfast_domain::audit::audit;
use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::directory;
use holdfast_domain::entities::{Role, property, reservation};
use holdfast_domain::reads::{self, PlotCounts};
use holdfast_domain::{Actor, Policy, ProjectId, PropertyId, ReservationId};
use holdfast_testkit::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};

/// A workspace with an admin, a manager and a project, in a database of its own.
pub struct World {
    pub conn: DatabaseConnection,
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
        let (ws, admin) =
            directory::create_workspace(&conn, "Acme Homes", "admin@acme.test", "Ada")
                .await
                .expect("workspace");
        let admin = Actor {
            user_id: admin.id,
            workspace_id: ws.id,
            role: Role::Admin,
        };
        let manager = directory::create_user(&conn, &admin, "Max", "max@acme.test", Role::Manager)
            .await
            .expect("manager");
        let manager = Actor {
            user_id: manager.id,
            workspace_id: ws.id,
            role: Role::Manager,
        };
        let project = directory::create_project(&conn, &manager, "Seaview")
            .await
            .expect("project")
            .id;
        World {
            conn,
            admin,
            manager,
            project,
            policy: Policy::default(),
            _db: db,
        }
    }

    pub async fn agents(&self, n: usize) -> Vec<Actor> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let email = format!("agent{i}-{}@acme.test", uuid::Uuid::new_v4().simple());
            let user = directory::create_user(
                &self.conn,
                &self.admin,
                &format!("Agent {i}"),
                &email,
                Role::SalesAgent,
            )
            .await
            .expect("agent");
            out.push(Actor {
                user_id: user.id,
                workspace_id: self.admin.workspace_id,
                role: Role::SalesAgent,
            });
        }
        out
    }

    pub async fn agent(&self) -> Actor {
        self.agents(1).await.remove(0)
    }

    pub async fn plots(&self, n: usize) -> Vec<PropertyId> {
        let codes: Vec<String> = (0..n).map(|i| format!("A-{i:05}")).collect();
        let mut ids = Vec::with_capacity(n);
        for chunk in codes.chunks(1000) {
            let added = directory::add_properties(&self.conn, &self.manager, self.project, chunk)
                .await
                .expect("plots");
            ids.extend(added.into_iter().map(|p| p.id));
        }
        ids
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
    /// and every invariant of DESIGN.md holds.
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
            counts.available + counts.reserved + counts.sold,
            "counts add up"
        );
        let violations = audit(&self.conn).await.expect("audit");
        assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    }
}
