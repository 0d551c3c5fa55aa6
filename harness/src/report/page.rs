//! Page geometry the SVG drawings (Lamport diagram, timeline) share.

/// The width drawings aim at: the page's 1160 px content (report.css) less an anomaly box's border and padding.
pub const PAGE_W: f64 = 1120.0;
