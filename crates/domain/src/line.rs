//! The line behind a held plot: joining it (on a free plot nobody waits
//! for, that is a hold at once) and leaving it. Promotion is not here: it
//! happens in the rules' one "end this hold" path, in the transaction that
//! ends the hold ahead (release, the job, the sweep, a takeover).

use sea_orm::DatabaseConnection;
use tracing::instrument;

use crate::entities::queue_entry::Model as QueueEntry;
use crate::ids::{PropertyId, QueueEntryId};
use crate::reservations::{Actor, Buyer, Caller, Policy};
use crate::rules::{Written, ask, ask_as, count, secs};

/// A joinQueue call: the property, and who the place in line is for.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub property_id: PropertyId,
    pub buyer: Option<Buyer>,
}

/// Puts the caller in line for the property (at most
/// `policy.max_queue_length` wait; 0 turns the line off), or, on a free plot
/// nobody waits for, gives it to them at once under the rules of reserve:
/// the entry answers PROMOTED, and the effects carry its hold.
#[instrument(skip_all, fields(workspace.id = %caller.workspace_id, user.id = %caller.user_id, property.id = %request.property_id))]
pub async fn join_queue(
    db: &DatabaseConnection,
    policy: &Policy,
    caller: Caller,
    request: &JoinRequest,
) -> Written<QueueEntry> {
    if let Some(buyer) = &request.buyer
        && let Err(bad) = buyer.check()
    {
        return Written::failed(bad);
    }
    let buyer = request.buyer.as_ref();
    let answer = ask_as(
        db,
        policy,
        "join_queue($1, $2, $3, ROW($4, $5, $6), $7, make_interval(secs => $8), $9)",
        || {
            vec![
                caller.workspace_id.0.into(),
                caller.user_id.0.into(),
                request.property_id.0.into(),
                buyer.map(|b| b.name.clone()).into(),
                buyer.and_then(|b| b.phone.clone()).into(),
                buyer.and_then(|b| b.email.clone()).into(),
                count(policy.max_queue_length),
                secs(policy.ttl),
                count(policy.max_active_per_agent),
            ]
        },
    )
    .await;
    entry_answer(answer)
}

/// Takes a waiting entry out of the line: its agent, a manager or an admin.
/// Leaving twice is harmless.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, queue_entry.id = %entry_id))]
pub async fn leave_queue(
    db: &DatabaseConnection,
    actor: &Actor,
    entry_id: QueueEntryId,
) -> Written<QueueEntry> {
    let answer = ask(
        db,
        "leave_queue($1, $2, $3, $4)",
        [
            actor.workspace_id.0.into(),
            actor.user_id.0.into(),
            actor.role.is_manager().into(),
            entry_id.0.into(),
        ],
    )
    .await;
    entry_answer(answer)
}

fn entry_answer(answer: crate::DomainResult<crate::rules::Answer>) -> Written<QueueEntry> {
    match answer {
        Ok(answer) => answer.into_entry_written(),
        Err(e) => Written::failed(e),
    }
}
