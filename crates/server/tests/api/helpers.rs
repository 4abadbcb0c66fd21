//! Test support: the real app on 127.0.0.1:0 against a fresh database of its
//! own, a private Redis queue, and helpers to make users of each role and
//! send GraphQL over HTTP.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use holdfast_domain::entities::Role;
use holdfast_domain::{UserId, WorkspaceId, directory};
use holdfast_server::auth::Tokens;
use holdfast_server::config::Deployment;
use holdfast_server::{Application, Config};
use holdfast_testkit::{Api, QueueKeys, Running, TestDb};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub use holdfast_testkit::TEST_SECRET;

/// The app, and a client of it (`url`, `gql`, `ok`, ... are `Api`'s).
pub struct TestApp {
    api: Api,
    pub db: DatabaseConnection,
    pub tokens: Tokens,
    /// SQL statements the app has run.
    pub statements: Arc<AtomicU64>,
    _app: Running<std::io::Result<()>>,
    /// The app's release jobs and events, deleted from Redis at the end.
    _queue: QueueKeys,
    // Dropped last: the database goes away after the app stops using it.
    pub test_db: TestDb,
}

/// A user and their bearer token.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub token: String,
}

/// A workspace and its first admin.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub admin: Member,
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        Config {
            deployment: Deployment {
                log_filter: "info,holdfast=debug".into(),
                ..Deployment::default()
            },
            ..Config::default()
        }
        .init_logging();
    }
}

/// The config every test app starts from.
pub fn test_config(test_db: &TestDb) -> Config {
    Config {
        deployment: Deployment {
            database_url: test_db.url.clone(),
            redis_url: holdfast_testkit::redis_url(),
            queue: holdfast_testkit::unique_queue(),
            ..Deployment::default()
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        jwt_secret: Some(TEST_SECRET.into()),
        db_max_connections: 10,
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An app whose config `adjust` changed first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(TestDb::new().await, adjust).await
}

/// An app on a database the test prepared.
pub async fn spawn_app_on(test_db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let mut config = test_config(&test_db);
    adjust(&mut config);
    let app = Application::build(&config).await.expect("build the app");
    let api = Api::new(app.addr());
    let statements = app.statement_counter();
    let app = Running::spawn(|stop| app.run_until(stop));
    let db = test_db.connect().await;
    let (secret, _) = config.jwt_secret();
    let tokens = Tokens::new(secret.as_bytes());
    TestApp {
        api,
        db,
        tokens,
        statements,
        _app: app,
        _queue: QueueKeys {
            name: config.deployment.queue.clone(),
            redis_url: config.deployment.redis_url.clone(),
        },
        test_db,
    }
}

impl Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestApp {
    /// A workspace and its admin, made the way `bootstrap` makes them.
    pub async fn bootstrap(&self, name: &str) -> Workspace {
        let (ws, admin) = directory::create_workspace(&self.db, name, "admin@example.com", "Admin")
            .await
            .expect("create a workspace");
        Workspace {
            id: ws.id,
            admin: Member {
                id: admin.id.to_string(),
                token: self.token_for(admin.id, ws.id),
            },
        }
    }

    pub fn token_for(&self, user: UserId, ws: WorkspaceId) -> String {
        self.tokens
            .mint(user, ws, std::time::Duration::from_secs(3600))
            .expect("mint a token")
    }

    /// A user of `role`, created by the workspace's admin over GraphQL.
    pub async fn member(&self, ws: &Workspace, role: Role, name: &str) -> Member {
        let role = match role {
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::SalesAgent => "SALES_AGENT",
        };
        let data = self
            .ok(
                &ws.admin.token,
                "mutation($name: String!, $email: String!, $role: Role!) { \
                   createUser(name: $name, email: $email, role: $role) { token user { id } } }",
                json!({ "name": name, "email": format!("{}@example.com", name.to_lowercase()), "role": role }),
            )
            .await;
        Member {
            id: data["createUser"]["user"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
            token: data["createUser"]["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        }
    }

    /// A project with these plot codes; returns its id and the plots' ids in order.
    pub async fn project(&self, token: &str, name: &str, codes: &[&str]) -> (String, Vec<String>) {
        let data = self
            .ok(
                token,
                "mutation($name: String!) { createProject(name: $name) { id } }",
                json!({ "name": name }),
            )
            .await;
        let project = data["createProject"]["id"].as_str().expect("id").to_owned();
        let data = self
            .ok(
                token,
                "mutation($p: ID!, $codes: [String!]!) { addProperties(projectId: $p, codes: $codes) { id code } }",
                json!({ "p": project, "codes": codes }),
            )
            .await;
        let ids = data["addProperties"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect();
        (project, ids)
    }

    /// Reserves a plot; returns the whole response body.
    pub async fn reserve(&self, token: &str, property: &str) -> Value {
        self.gql(
            Some(token),
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt extensionCount } }",
            json!({ "id": property }),
        )
        .await
    }

    /// The domain's invariants hold in the database.
    pub async fn assert_consistent(&self) {
        let violations = holdfast_domain::audit::audit(&self.db)
            .await
            .expect("audit");
        assert!(violations.is_empty(), "broken invariants: {violations:?}");
    }
}

/// `extensions.code` and `extensions.status` of the first error.
pub fn error_of(body: &Value) -> (String, i64) {
    let err = &body["errors"][0];
    assert!(err.is_object(), "expected an error, got {body}");
    (
        err["extensions"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_owned(),
        err["extensions"]["status"].as_i64().unwrap_or(0),
    )
}

/// Asserts the first error's code and status.
pub fn assert_error(body: &Value, code: &str, status: i64) {
    assert_eq!(error_of(body), (code.to_owned(), status), "body: {body}");
}
