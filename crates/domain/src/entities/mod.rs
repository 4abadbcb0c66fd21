//! SeaORM entities, one per table. Reads that must reflect "now" go through
//! the `*_now` views (see `crate::reads`), which share these models.

pub mod project;
pub mod property;
pub mod queue_entry;
pub mod reservation;
pub mod user;
pub mod workspace;

pub use project::Entity as Project;
pub use property::{Entity as Property, PropertyStatus};
pub use queue_entry::{Entity as QueueEntry, QueueEntryStatus};
pub use reservation::{EndSource, Entity as Reservation, ReservationStatus};
pub use user::{Entity as User, Role};
pub use workspace::{Entity as Workspace, WorkspaceStatus};
