//! Reports people read and CI consumes: the self-contained `report.html`
//! (timeline, anomaly diagrams, plots) and JUnit XML.
//!
//! Entry points: [`html::write_report`] renders a run directory's
//! `report.html`; [`html::render`] renders from values in memory;
//! [`junit`] builds and writes JUnit XML for `run`, `check`, `explore` and
//! `suite`.

pub mod escape;
pub mod html;
pub mod junit;
pub mod lamport;
pub mod lin_window;
pub mod messages;
pub mod model;
pub mod plots;
pub mod prose;
pub mod timeline;
