//! OpenMeter v1: CloudEvents ingest and meters. Errors on these routes are RFC 7807 problems.

pub mod events;
pub mod meters;
