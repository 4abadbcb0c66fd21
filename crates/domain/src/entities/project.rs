use sea_orm::entity::prelude::*;

use crate::ids::{ProjectId, WorkspaceId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "project")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ProjectId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub created_at: DateTimeUtc,
    /// ISO 4217 code of the prices of the project's plots, if it has one.
    pub currency: Option<String>,
    /// Left out of project lists; its plots cannot be reserved.
    pub archived: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
