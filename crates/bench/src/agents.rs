//! The bench workspace as the scenarios need it: its project and its agents
//! with a bearer token each, kept in a JSON file between `setup` and the runs.
//! Tokens come from the server's own `token` command, so that their format is
//! always the server's.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::client::AgentClient;

/// One agent and its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    pub token: String,
}

/// What `setup` made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchWorkspace {
    pub workspace_id: String,
    pub project_id: String,
    pub plots: u64,
    pub agents: Vec<Agent>,
}

impl BenchWorkspace {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the agents file {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Clients for the first `n` agents, against `graphql_url`.
    pub fn clients(&self, n: usize, graphql_url: &str) -> anyhow::Result<Vec<AgentClient>> {
        self.clients_from(0, n, graphql_url)
    }

    /// Clients for `n` agents from the `skip`-th on, against `graphql_url`.
    pub fn clients_from(
        &self,
        skip: usize,
        n: usize,
        graphql_url: &str,
    ) -> anyhow::Result<Vec<AgentClient>> {
        if skip + n > self.agents.len() {
            bail!(
                "{} agents asked for, the bench workspace has {} (run setup with more --agents)",
                skip + n,
                self.agents.len()
            );
        }
        self.agents[skip..skip + n]
            .iter()
            .map(|a| AgentClient::new(&a.id, &a.token, graphql_url))
            .collect()
    }
}

/// Tokens minted by `server_bin token --user-id ID`, a few processes at a
/// time, in the order of `user_ids`. The server reads its settings
/// (`DATABASE_URL`, `HOLDFAST_JWT_SECRET`) from this process's environment.
pub async fn tokens_from_cli(
    server_bin: &Path,
    user_ids: &[String],
    ttl: &str,
) -> anyhow::Result<Vec<String>> {
    futures::stream::iter(user_ids.iter().map(|id| async move {
        let output = tokio::process::Command::new(server_bin)
            .args(["token", "--user-id", id, "--ttl", ttl])
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {} token", server_bin.display()))?;
        if !output.status.success() {
            bail!(
                "{} token --user-id {id} failed: {}",
                server_bin.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let token = String::from_utf8(output.stdout)?.trim().to_owned();
        if token.is_empty() {
            bail!("{} token printed nothing", server_bin.display());
        }
        Ok(token)
    }))
    .buffered(4)
    .try_collect()
    .await
}
