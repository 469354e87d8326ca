//! `kiln inspect` of a container: what its record, its `config.json` (the OCI spec it runs
//! with) and its `launch.json` (limits, networks, ports) say, read together. The CLI
//! renders it (Docker's field names in JSON). It reads only.

use super::ContainerError;
use super::lifecycle::Launch;
use crate::state::{Record, Records};

/// A container's record (as the kernel sees it now), spec and launch description; the
/// files are `None` when they cannot be read (a container half-removed).
#[derive(Debug, Clone)]
pub struct Details {
    pub record: Record,
    pub spec: Option<oci_spec::runtime::Spec>,
    pub launch: Option<Launch>,
    /// Frozen by `kiln pause`.
    pub paused: bool,
}

/// Reads container `record`'s details.
pub fn details(records: &Records, record: &Record) -> Result<Details, ContainerError> {
    let dir = records.dir(&record.id);
    let record = records.load(&record.id)?.reconciled();
    Ok(Details {
        paused: super::is_paused(records.state_root(), &record),
        record,
        spec: oci_spec::runtime::Spec::load(dir.join("config.json")).ok(),
        launch: Launch::load(&dir).ok(),
    })
}
