use sea_orm::entity::prelude::*;

use crate::ids::{ProjectId, PropertyId, UserId, WorkspaceId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "property")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: PropertyId,
    pub workspace_id: WorkspaceId,
    pub project_id: ProjectId,
    pub code: String,
    pub status: PropertyStatus,
    pub reserved_by_id: Option<UserId>,
    pub reserved_until: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// The price, as PostgreSQL's `numeric(14, 2)` prints it ("12500000.00"):
    /// read as text and written as text cast to numeric, so it is never a
    /// float on its way (see `inventory::Price`).
    #[sea_orm(select_as = "text", save_as = "numeric")]
    #[serde(default)]
    pub price: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropertyStatus {
    #[sea_orm(string_value = "AVAILABLE")]
    Available,
    #[sea_orm(string_value = "RESERVED")]
    Reserved,
    #[sea_orm(string_value = "SOLD")]
    Sold,
    /// Taken off the market by a manager: it cannot be reserved or queued for.
    #[sea_orm(string_value = "WITHDRAWN")]
    Withdrawn,
}

impl PropertyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyStatus::Available => "AVAILABLE",
            PropertyStatus::Reserved => "RESERVED",
            PropertyStatus::Sold => "SOLD",
            PropertyStatus::Withdrawn => "WITHDRAWN",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
