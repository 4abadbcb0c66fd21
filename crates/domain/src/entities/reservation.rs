use sea_orm::entity::prelude::*;

use crate::ids::{PropertyId, ReservationId, UserId, WorkspaceId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "reservation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ReservationId,
    pub workspace_id: WorkspaceId,
    pub property_id: PropertyId,
    pub agent_id: UserId,
    pub status: ReservationStatus,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub ended_by_id: Option<UserId>,
    pub end_source: Option<EndSource>,
    pub extension_count: i32,
    pub version: i32,
    /// Who the hold is for (a name, and optionally a phone and an email).
    pub buyer_name: Option<String>,
    pub buyer_phone: Option<String>,
    pub buyer_email: Option<String>,
    pub note: Option<String>,
    /// The key of the call that made it: a retry with the key answers this
    /// reservation (for a day).
    pub idempotency_key: Option<String>,
    /// The version its expiry warning was sent for.
    pub warned_version: Option<i32>,
    /// The queue entry this hold came from, if it came from the line.
    pub queue_entry_id: Option<crate::ids::QueueEntryId>,
    /// The property's price when the hold began (text, as for
    /// `property::Model::price`).
    #[sea_orm(select_as = "text", save_as = "numeric")]
    #[serde(default)]
    pub price_at_reservation: Option<String>,
}

impl Model {
    /// Who the hold is for, if anyone.
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
pub enum ReservationStatus {
    /// Holds its property right now.
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// Ended early by its agent or a manager.
    #[sea_orm(string_value = "RELEASED")]
    Released,
    /// Ran out of time.
    #[sea_orm(string_value = "EXPIRED")]
    Expired,
    /// Became a sale.
    #[sea_orm(string_value = "CONVERTED")]
    Converted,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Active => "ACTIVE",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Expired => "EXPIRED",
            ReservationStatus::Converted => "CONVERTED",
        }
    }
}

/// What ended a reservation; also the `source` label of the releases metric.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "lowercase")]
pub enum EndSource {
    #[sea_orm(string_value = "agent")]
    Agent,
    #[sea_orm(string_value = "manager")]
    Manager,
    #[sea_orm(string_value = "job")]
    Job,
    #[sea_orm(string_value = "sweep")]
    Sweep,
    #[sea_orm(string_value = "takeover")]
    Takeover,
}

impl EndSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EndSource::Agent => "agent",
            EndSource::Manager => "manager",
            EndSource::Job => "job",
            EndSource::Sweep => "sweep",
            EndSource::Takeover => "takeover",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
