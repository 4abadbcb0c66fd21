//! `seed-demo`: a demo workspace to try GraphiQL with at once. Running it
//! again reuses what is there (found by name and email) and mints new tokens.

use std::time::Duration;

use holdfast_domain::entities::{Role, project, property, user, workspace};
use holdfast_domain::inventory::{self, Price, PropertyUpdate};
use holdfast_domain::team::{self, ProjectChange};
use holdfast_domain::{Actor, Buyer, ReserveRequest, directory, reservations};
use holdfast_runtime::Outbox;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use crate::auth::Tokens;

pub const DEMO_WORKSPACE: &str = "Holdfast Demo";
pub const DEMO_PROJECT: &str = "Riverside Gardens";
/// The currency of the demo project's prices (4,500,000.00 and up): Indian rupees.
const DEMO_CURRENCY: &str = "INR";
/// Demo tokens last as long as `token`'s default.
const TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

const ADMIN: (&str, &str) = ("Ada Admin", "admin@demo.holdfast.test");
const OTHERS: &[(&str, &str, Role)] = &[
    ("Max Manager", "manager@demo.holdfast.test", Role::Manager),
    ("Alice Agent", "alice@demo.holdfast.test", Role::SalesAgent),
    ("Bob Agent", "bob@demo.holdfast.test", Role::SalesAgent),
    ("Carol Agent", "carol@demo.holdfast.test", Role::SalesAgent),
];

/// What the demo holds, for printing.
pub struct Demo {
    pub workspace: workspace::Model,
    pub project: project::Model,
    pub plots: u64,
    /// Users with a fresh token each, admin first.
    pub users: Vec<(user::Model, String)>,
}

fn plot_codes() -> Vec<String> {
    let a = (1..=40).map(|i| format!("A-{i:03}"));
    let b = (1..=10).map(|i| format!("B-{i:03}"));
    a.chain(b).collect()
}

/// A demo plot's price: row A from 4,500,000.00 up by 25,000.00 a plot, the
/// larger plots of row B at 7,250,000.00.
fn plot_price(index: usize) -> String {
    if index < 40 {
        format!("{}.00", 4_500_000 + 25_000 * index)
    } else {
        "7250000.00".to_owned()
    }
}

/// Gives the demo's new plots their prices, before any hold begins (a hold
/// keeps the price its plot had then).
async fn price_plots(
    db: &DatabaseConnection,
    actor: &Actor,
    plots: &[property::Model],
) -> anyhow::Result<()> {
    for (i, plot) in plots.iter().enumerate() {
        let update = PropertyUpdate {
            code: None,
            price: Some(Some(Price::parse(&plot_price(i))?)),
        };
        inventory::update_property(db, actor, plot.id, &update)
            .await
            .result?;
    }
    Ok(())
}

async fn find_user(
    db: &DatabaseConnection,
    ws: &workspace::Model,
    email: &str,
) -> anyhow::Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws.id))
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

/// A few holds of the demo's agents, for buyers, when its plots are new: the
/// board and GraphiQL have something to show.
const DEMO_HOLDS: &[(&str, usize, &str, &str)] = &[
    (
        "alice@demo.holdfast.test",
        2,
        "The Sharmas",
        "Talking to their bank",
    ),
    (
        "bob@demo.holdfast.test",
        6,
        "The Kapoors",
        "Second visit on Saturday",
    ),
    (
        "alice@demo.holdfast.test",
        11,
        "Mr and Mrs Okafor",
        "Want a corner plot",
    ),
];

async fn hold_for_buyers(
    db: &DatabaseConnection,
    outbox: &Outbox,
    users: &[user::Model],
    plots: &[property::Model],
) -> anyhow::Result<()> {
    for (email, plot, buyer, note) in DEMO_HOLDS {
        let (Some(agent), Some(plot)) =
            (users.iter().find(|u| u.email == *email), plots.get(*plot))
        else {
            continue;
        };
        let request = ReserveRequest {
            property_id: plot.id,
            buyer: Some(Buyer {
                name: (*buyer).to_owned(),
                ..Buyer::default()
            }),
            note: Some((*note).to_owned()),
            idempotency_key: None,
        };
        let actor = Actor {
            user_id: agent.id,
            workspace_id: agent.workspace_id,
            role: agent.role,
        };
        let written = reservations::reserve(db, &outbox.policy, &actor, request).await;
        outbox.after_commit(&written.effects).await;
        written.result?;
    }
    Ok(())
}

/// Makes (or finds) the demo; a new one's plots get a few holds for buyers,
/// their jobs scheduled through `holds`, unless it is `None`.
pub async fn seed_demo(
    db: &DatabaseConnection,
    tokens: &Tokens,
    holds: Option<&Outbox>,
) -> anyhow::Result<Demo> {
    let existing = workspace::Entity::find()
        .filter(workspace::Column::Name.eq(DEMO_WORKSPACE))
        .order_by_asc(workspace::Column::CreatedAt)
        .one(db)
        .await?;
    let (ws, admin) = match existing {
        Some(ws) => {
            let admin = find_user(db, &ws, ADMIN.1).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "the demo workspace exists but its admin {} is gone",
                    ADMIN.1
                )
            })?;
            (ws, admin)
        }
        None => directory::create_workspace(db, DEMO_WORKSPACE, ADMIN.1, ADMIN.0).await?,
    };
    let actor = Actor {
        user_id: admin.id,
        workspace_id: ws.id,
        role: admin.role,
    };

    let mut users = vec![admin];
    for (name, email, role) in OTHERS {
        let user = match find_user(db, &ws, email).await? {
            Some(user) => user,
            None => directory::create_user(db, &actor, name, email, *role).await?,
        };
        users.push(user);
    }

    let project = match project::Entity::find()
        .filter(project::Column::WorkspaceId.eq(ws.id))
        .filter(project::Column::Name.eq(DEMO_PROJECT))
        .one(db)
        .await?
    {
        Some(project) => project,
        None => {
            let project = directory::create_project(db, &actor, DEMO_PROJECT).await?;
            let currency = ProjectChange {
                currency: Some(Some(DEMO_CURRENCY.to_owned())),
                ..ProjectChange::default()
            };
            team::update_project(db, &actor, project.id, &currency).await?
        }
    };
    let plots = property::Entity::find()
        .filter(property::Column::ProjectId.eq(project.id))
        .count(db)
        .await?;
    let plots = if plots == 0 {
        let codes = plot_codes();
        let added = directory::add_properties(db, &actor, project.id, &codes).await?;
        price_plots(db, &actor, &added).await?;
        if let Some(outbox) = holds {
            hold_for_buyers(db, outbox, &users, &added).await?;
        }
        codes.len() as u64
    } else {
        plots
    };

    let users = users
        .into_iter()
        .map(|u| {
            let token = tokens.mint(u.id, u.workspace_id, TOKEN_TTL)?;
            Ok((u, token))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Demo {
        workspace: ws,
        project,
        plots,
        users,
    })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "ADMIN",
        Role::Manager => "MANAGER",
        Role::SalesAgent => "SALES_AGENT",
    }
}

/// The demo, and how to try it in GraphiQL at `graphiql_url`.
pub fn describe(demo: &Demo, graphiql_url: &str) -> String {
    let mut out = format!(
        "Demo workspace \"{}\" ({}), project \"{}\" ({}) with {} plots.\n\nUsers and bearer tokens (valid 30 days):\n",
        demo.workspace.name, demo.workspace.id, demo.project.name, demo.project.id, demo.plots
    );
    for (user, token) in &demo.users {
        out.push_str(&format!(
            "  {:<12} {:<12} {:<28} {}\n",
            role_name(user.role),
            user.name,
            user.email,
            token
        ));
    }
    let agent_token = demo
        .users
        .iter()
        .find(|(u, _)| u.role == Role::SalesAgent)
        .map_or("", |(_, t)| t.as_str());
    out.push_str(&format!(
        "\nTry it: open {graphiql_url}#token={agent_token} (GraphiQL, with this agent's token\n\
         already in its Headers pane), or open {graphiql_url} and paste this in the Headers pane\n\
         (bottom left):\n\n  {{\"Authorization\": \"Bearer {agent_token}\"}}\n\n\
         then run:\n\n  {{ projects {{ nodes {{ name availablePlots properties(first: 5, status: AVAILABLE) {{ nodes {{ id code status price }} }} }} }} }}\n\n\
         reserve one of those plots for a buyer:\n\n  mutation {{ reserveProperty(propertyId: \"<an id from above>\", buyer: {{ name: \"The Mehtas\" }}, idempotencyKey: \"try-1\") {{ id status expiresAt buyer {{ name }} property {{ code status }} }} }}\n\n\
         and see your holds, with their buyers:\n\n  {{ me {{ activeReservations {{ property {{ code }} buyer {{ name }} note expiresAt }} }} }}\n"
    ));
    out
}
