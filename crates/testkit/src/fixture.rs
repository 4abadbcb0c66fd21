//! A workspace to test in, made straight through the domain (no server
//! needed): its admin, a manager and a first project, and as many agents
//! and plots as a test asks for.

use holdfast_domain::entities::{Role, property};
use holdfast_domain::{Actor, ProjectId, PropertyId, WorkspaceId, directory};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

/// A workspace with Ada its admin and Max a manager, and the manager's
/// project "Seaview".
pub struct Workspace {
    pub id: WorkspaceId,
    pub admin: Actor,
    pub manager: Actor,
    pub project: ProjectId,
    /// Where its users' emails are: the first word of its name, lowercased
    /// (`acme.test` for "Acme Homes").
    pub email_domain: String,
}

impl Workspace {
    pub async fn create(conn: &DatabaseConnection, name: &str) -> Workspace {
        let first_word = name.split_whitespace().next().unwrap_or("workspace");
        let email_domain = format!("{}.test", first_word.to_lowercase());
        let (ws, admin) =
            directory::create_workspace(conn, name, &format!("admin@{email_domain}"), "Ada")
                .await
                .expect("workspace");
        let admin = actor(admin.id, ws.id, Role::Admin);
        let email = format!("max@{email_domain}");
        let manager = directory::create_user(conn, &admin, "Max", &email, Role::Manager)
            .await
            .expect("manager");
        let manager = actor(manager.id, ws.id, Role::Manager);
        let project = directory::create_project(conn, &manager, "Seaview")
            .await
            .expect("project")
            .id;
        Workspace {
            id: ws.id,
            admin,
            manager,
            project,
            email_domain,
        }
    }

    /// `n` new agents, "Agent 0", "Agent 1", ... (their emails never repeat).
    pub async fn agents(&self, conn: &DatabaseConnection, n: usize) -> Vec<Actor> {
        let mut agents = Vec::with_capacity(n);
        for i in 0..n {
            let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
            let email = format!("agent{i}-{tag}@{}", self.email_domain);
            let name = format!("Agent {i}");
            let user = directory::create_user(conn, &self.admin, &name, &email, Role::SalesAgent)
                .await
                .expect("agent");
            agents.push(actor(user.id, self.id, Role::SalesAgent));
        }
        agents
    }

    pub async fn agent(&self, conn: &DatabaseConnection) -> Actor {
        self.agents(conn, 1).await.remove(0)
    }

    /// Another project, made by the admin.
    pub async fn add_project(&self, conn: &DatabaseConnection, name: &str) -> ProjectId {
        directory::create_project(conn, &self.admin, name)
            .await
            .expect("project")
            .id
    }

    /// `n` new plots of `project`, coded `<prefix>-00000`, `<prefix>-00001`,
    /// ... after those it has, added as a manager adds them (1,000 a call at
    /// most).
    pub async fn plots(
        &self,
        conn: &DatabaseConnection,
        project: ProjectId,
        prefix: &str,
        n: usize,
    ) -> Vec<PropertyId> {
        let first = property::Entity::find()
            .filter(property::Column::ProjectId.eq(project))
            .count(conn)
            .await
            .expect("count plots") as usize;
        let codes: Vec<String> = (first..first + n)
            .map(|i| format!("{prefix}-{i:05}"))
            .collect();
        let mut ids = Vec::with_capacity(n);
        for chunk in codes.chunks(directory::MAX_PROPERTIES_PER_CALL) {
            let added = directory::add_properties(conn, &self.manager, project, chunk)
                .await
                .expect("plots");
            ids.extend(added.into_iter().map(|p| p.id));
        }
        ids
    }
}

fn actor(user_id: holdfast_domain::UserId, workspace_id: WorkspaceId, role: Role) -> Actor {
    Actor {
        user_id,
        workspace_id,
        role,
    }
}
