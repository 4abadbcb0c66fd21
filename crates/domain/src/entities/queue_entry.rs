use sea_orm::entity::prelude::*;

use crate::ids::{PropertyId, QueueEntryId, ReservationId, UserId, WorkspaceId};

/// A place in the line behind a held plot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "queue_entry")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: QueueEntryId,
    pub workspace_id: WorkspaceId,
    pub property_id: PropertyId,
    pub agent_id: UserId,
    pub buyer_name: Option<String>,
    pub buyer_phone: Option<String>,
    pub buyer_email: Option<String>,
    pub status: QueueEntryStatus,
    pub created_at: DateTimeUtc,
    /// When it stopped waiting (promoted, left, skipped or closed).
    pub ended_at: Option<DateTimeUtc>,
    /// Who took it out of the line (LEFT only).
    pub ended_by_id: Option<UserId>,
    /// The hold it became (PROMOTED only).
    pub reservation_id: Option<ReservationId>,
}

impl Model {
    /// Who the place in line is for, if anyone.
    pub fn buyer(&self) -> Option<crate::Buyer> {
        self.buyer_name.as_ref().map(|name| crate::Buyer {
            name: name.clone(),
            phone: self.buyer_phone.clone(),
            email: self.buyer_email.clone(),
        })
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueEntryStatus {
    /// Waits in line for the property.
    #[sea_orm(string_value = "WAITING")]
    Waiting,
    /// Became a hold when the holds and entries before it ended.
    #[sea_orm(string_value = "PROMOTED")]
    Promoted,
    /// Its agent or a manager took it out of the line.
    #[sea_orm(string_value = "LEFT")]
    Left,
    /// Passed over at its turn: its agent could not hold.
    #[sea_orm(string_value = "SKIPPED")]
    Skipped,
    /// The property was sold or withdrawn while it waited.
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

impl QueueEntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueEntryStatus::Waiting => "WAITING",
            QueueEntryStatus::Promoted => "PROMOTED",
            QueueEntryStatus::Left => "LEFT",
            QueueEntryStatus::Skipped => "SKIPPED",
            QueueEntryStatus::Closed => "CLOSED",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
