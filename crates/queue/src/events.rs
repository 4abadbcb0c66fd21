//! What live subscribers are told, as it goes over the wire (JSON): a
//! property's status change ([`PropertyChanged`]) and an event of a hold
//! ([`HoldEvent`]), both derived from what a write committed (its
//! `Effects`). `pubsub.rs` carries them.

use chrono::{DateTime, Utc};
use holdfast_domain::Effects;
use holdfast_domain::entities::{PropertyStatus, QueueEntryStatus, ReservationStatus};
use holdfast_domain::{ProjectId, PropertyId, QueueEntryId, ReservationId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// One status change of one property, as it goes over the wire (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyChanged {
    pub workspace_id: WorkspaceId,
    pub project_id: ProjectId,
    pub property_id: PropertyId,
    /// The property's code when the change was made.
    #[serde(default)]
    pub code: String,
    #[serde(with = "status_name")]
    pub previous_status: PropertyStatus,
    #[serde(with = "status_name")]
    pub status: PropertyStatus,
    /// When the change was committed (the database's clock).
    pub at: DateTime<Utc>,
    /// Who holds the property after the change (RESERVED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_by_id: Option<UserId>,
    /// Until when (RESERVED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_until: Option<DateTime<Utc>>,
    /// The property's price when the change was made, as exact text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
}

impl PropertyChanged {
    /// The property changes a write committed, in order: each ended hold
    /// (RESERVED to AVAILABLE, or to SOLD for a conversion), then each hold
    /// begun (AVAILABLE to RESERVED), then each extension (RESERVED to
    /// RESERVED, with the new end, at `now`: boards count a hold down, and
    /// must hear that its end moved), then each change no hold made (a
    /// withdrawal, a restore). A takeover of a lapsed hold is thus two
    /// changes, so that counts kept by clients stay right.
    pub fn of_effects(effects: &Effects, now: DateTime<Utc>) -> Vec<PropertyChanged> {
        // A hold that came from the line in place of one that ended (a
        // promotion) is one change, RESERVED to RESERVED: the plot was never
        // free in between.
        let handed_on = |property_id| {
            effects.started.iter().any(|h| {
                h.reservation.property_id == property_id && h.reservation.queue_entry_id.is_some()
            })
        };
        let ended = effects
            .ended
            .iter()
            .filter(|hold| !handed_on(hold.reservation.property_id))
            .map(|hold| {
                let r = &hold.reservation;
                let status = if r.status == ReservationStatus::Converted {
                    PropertyStatus::Sold
                } else {
                    PropertyStatus::Available
                };
                PropertyChanged {
                    workspace_id: r.workspace_id,
                    project_id: hold.project_id,
                    property_id: r.property_id,
                    code: hold.property_code.clone(),
                    previous_status: PropertyStatus::Reserved,
                    status,
                    at: r.ended_at.unwrap_or(r.created_at),
                    reserved_by_id: None,
                    reserved_until: None,
                    price: hold.property_price.clone(),
                }
            });
        let started = effects.started.iter().map(|hold| {
            let r = &hold.reservation;
            let promoted = r.queue_entry_id.is_some()
                && effects
                    .ended
                    .iter()
                    .any(|e| e.reservation.property_id == r.property_id);
            PropertyChanged {
                workspace_id: r.workspace_id,
                project_id: hold.project_id,
                property_id: r.property_id,
                code: hold.property_code.clone(),
                previous_status: if promoted {
                    PropertyStatus::Reserved
                } else {
                    PropertyStatus::Available
                },
                status: PropertyStatus::Reserved,
                at: r.created_at,
                reserved_by_id: Some(r.agent_id),
                reserved_until: Some(r.expires_at),
                price: hold.property_price.clone(),
            }
        });
        let extended = effects.extended.iter().map(|hold| {
            let r = &hold.reservation;
            PropertyChanged {
                workspace_id: r.workspace_id,
                project_id: hold.project_id,
                property_id: r.property_id,
                code: hold.property_code.clone(),
                previous_status: PropertyStatus::Reserved,
                status: PropertyStatus::Reserved,
                at: now,
                reserved_by_id: Some(r.agent_id),
                reserved_until: Some(r.expires_at),
                price: hold.property_price.clone(),
            }
        });
        let changed = effects.changed.iter().map(|c| PropertyChanged {
            workspace_id: c.workspace_id,
            project_id: c.project_id,
            property_id: c.property_id,
            code: c.code.clone(),
            previous_status: c.previous_status,
            status: c.status,
            at: c.at,
            reserved_by_id: None,
            reserved_until: None,
            price: c.price.clone(),
        });
        ended
            .chain(started)
            .chain(extended)
            .chain(changed)
            .collect()
    }
}

/// A property status as its database name (the domain's enum is not serde).
mod status_name {
    use holdfast_domain::entities::PropertyStatus;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(status: &PropertyStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PropertyStatus, D::Error> {
        let name = String::deserialize(d)?;
        [
            PropertyStatus::Available,
            PropertyStatus::Reserved,
            PropertyStatus::Sold,
            PropertyStatus::Withdrawn,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| D::Error::custom(format!("unknown property status {name}")))
    }
}

/// What happened to a hold (or a place in line), for its agent and the
/// managers who follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldEventKind {
    /// The hold ends within the expiry warning.
    Expiring,
    /// The hold ran out.
    Expired,
    /// Its agent or a manager released it.
    Released,
    Extended,
    Converted,
    /// A queue entry became this hold.
    Promoted,
    /// A hold began by reserveProperty (a hold from the line is PROMOTED).
    Reserved,
    /// A queue entry ended without becoming a hold.
    QueueEnded,
}

/// One event of a hold, as it goes over the wire (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldEvent {
    pub workspace_id: WorkspaceId,
    /// The agent whose hold (or place in line) it is.
    pub agent_id: UserId,
    pub kind: HoldEventKind,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_entry_id: Option<QueueEntryId>,
}

impl HoldEvent {
    /// The events of what a write committed: each ended hold (EXPIRED,
    /// RELEASED or CONVERTED), each hold begun (RESERVED, or PROMOTED when
    /// a queue entry became it), each
    /// extension, each warning, and each place in line that ended without a
    /// hold (QUEUE_ENDED: skipped or closed). `now` stamps what the rows do
    /// not date (an extension, a warning).
    pub fn of_effects(effects: &Effects, now: DateTime<Utc>) -> Vec<HoldEvent> {
        let event = |r: &holdfast_domain::entities::reservation::Model, kind, at| HoldEvent {
            workspace_id: r.workspace_id,
            agent_id: r.agent_id,
            kind,
            at,
            reservation_id: Some(r.id),
            queue_entry_id: r.queue_entry_id,
        };
        let ended = effects.ended.iter().filter_map(|hold| {
            let r = &hold.reservation;
            let kind = match r.status {
                ReservationStatus::Expired => HoldEventKind::Expired,
                ReservationStatus::Released => HoldEventKind::Released,
                ReservationStatus::Converted => HoldEventKind::Converted,
                ReservationStatus::Active => return None,
            };
            Some(event(r, kind, r.ended_at.unwrap_or(now)))
        });
        let begun = effects.started.iter().map(|hold| {
            let r = &hold.reservation;
            let kind = if r.queue_entry_id.is_some() {
                HoldEventKind::Promoted
            } else {
                HoldEventKind::Reserved
            };
            event(r, kind, r.created_at)
        });
        let extended = effects
            .extended
            .iter()
            .map(|hold| event(&hold.reservation, HoldEventKind::Extended, now));
        let queue_ended = effects
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    QueueEntryStatus::Skipped | QueueEntryStatus::Closed
                )
            })
            .map(|e| HoldEvent {
                workspace_id: e.workspace_id,
                agent_id: e.agent_id,
                kind: HoldEventKind::QueueEnded,
                at: e.ended_at.unwrap_or(now),
                reservation_id: None,
                queue_entry_id: Some(e.id),
            });
        let warned = effects
            .warned
            .iter()
            .map(|hold| event(&hold.reservation, HoldEventKind::Expiring, now));
        ended
            .chain(begun)
            .chain(extended)
            .chain(warned)
            .chain(queue_ended)
            .collect()
    }
}

/// Everything a write announces: the property changes and the hold events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcements {
    pub changes: Vec<PropertyChanged>,
    pub holds: Vec<HoldEvent>,
}

impl Announcements {
    pub fn of_effects(effects: &Effects, now: DateTime<Utc>) -> Self {
        Self {
            changes: PropertyChanged::of_effects(effects, now),
            holds: HoldEvent::of_effects(effects, now),
        }
    }

    pub fn len(&self) -> usize {
        self.changes.len() + self.holds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_over_the_wire_as_camel_case_json_with_status_names() {
        let change = PropertyChanged {
            workspace_id: WorkspaceId::new(),
            project_id: ProjectId::new(),
            property_id: PropertyId::new(),
            code: "A-017".into(),
            previous_status: PropertyStatus::Available,
            status: PropertyStatus::Reserved,
            at: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            reserved_by_id: Some(UserId::new()),
            reserved_until: DateTime::from_timestamp(1_700_000_090, 0),
            price: Some("12500000.00".into()),
        };
        let json = serde_json::to_value(&change).expect("encode");
        assert_eq!(json["previousStatus"], "AVAILABLE");
        assert_eq!(json["status"], "RESERVED");
        assert_eq!(json["propertyId"], change.property_id.to_string());
        let back: PropertyChanged = serde_json::from_value(json).expect("decode");
        assert_eq!(back, change);
    }

    /// A hold of `plot` by `agent`, as the rules answer it.
    fn hold(
        plot: PropertyId,
        agent: UserId,
        status: &str,
        from_line: bool,
    ) -> holdfast_domain::Hold {
        let entry = from_line.then(QueueEntryId::new);
        serde_json::from_value(serde_json::json!({
            "id": ReservationId::new(), "workspace_id": WorkspaceId::new(),
            "property_id": plot, "agent_id": agent, "status": status,
            "created_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-26T10:00:00Z",
            "ended_at": if status == "ACTIVE" { None } else { Some("2026-11-25T12:00:00Z") },
            "ended_by_id": null, "end_source": null, "extension_count": 0, "version": 1,
            "buyer_name": null, "buyer_phone": null, "buyer_email": null, "note": null,
            "idempotency_key": null, "warned_version": null, "queue_entry_id": entry,
            "project_id": ProjectId::new(), "property_code": "A-017",
        }))
        .expect("a hold")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    fn statuses(changes: &[PropertyChanged]) -> Vec<(&str, &str)> {
        changes
            .iter()
            .map(|c| (c.previous_status.as_str(), c.status.as_str()))
            .collect()
    }

    #[test]
    fn a_takeover_is_two_changes_and_a_promotion_one() {
        let plot = PropertyId::new();
        let takeover = Effects {
            ended: vec![hold(plot, UserId::new(), "EXPIRED", false)],
            started: vec![hold(plot, UserId::new(), "ACTIVE", false)],
            ..Effects::default()
        };
        let announced = Announcements::of_effects(&takeover, now());
        assert_eq!(
            statuses(&announced.changes),
            [("RESERVED", "AVAILABLE"), ("AVAILABLE", "RESERVED")]
        );
        let kinds: Vec<_> = announced.holds.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [HoldEventKind::Expired, HoldEventKind::Reserved]);

        let next = UserId::new();
        let promotion = Effects {
            ended: vec![hold(plot, UserId::new(), "RELEASED", false)],
            started: vec![hold(plot, next, "ACTIVE", true)],
            ..Effects::default()
        };
        let announced = Announcements::of_effects(&promotion, now());
        assert_eq!(statuses(&announced.changes), [("RESERVED", "RESERVED")]);
        assert_eq!(announced.changes[0].reserved_by_id, Some(next));
        let kinds: Vec<_> = announced.holds.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [HoldEventKind::Released, HoldEventKind::Promoted]);
    }

    #[test]
    fn an_extension_tells_boards_the_new_end() {
        let extended = hold(PropertyId::new(), UserId::new(), "ACTIVE", false);
        let effects = Effects {
            extended: vec![extended.clone()],
            ..Effects::default()
        };
        let announced = Announcements::of_effects(&effects, now());
        assert_eq!(statuses(&announced.changes), [("RESERVED", "RESERVED")]);
        assert_eq!(
            announced.changes[0].reserved_until,
            Some(extended.reservation.expires_at)
        );
        assert_eq!(announced.changes[0].at, now());
        assert_eq!(announced.holds[0].kind, HoldEventKind::Extended);
    }
}
