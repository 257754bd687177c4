//! Extra sections of the status page, for figures another command owns (Jetstream's
//! subscribers by mode and bytes sent): each a title and a function from the parsed metrics to
//! a list of figures with units, so the page formats bytes and times without guessing from
//! names, and a section can only show what `/metrics` shows.

use std::sync::Arc;

use serde::Serialize;

use crate::prom::Exposition;

/// Reads a section's figures from the metrics exposition (what `/metrics` serves now).
pub type SectionFn = Arc<dyn Fn(&Exposition) -> Vec<Figure> + Send + Sync>;

/// How the page shows a figure's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A whole number of things.
    Count,
    /// Bytes (shown as KB, MB, … with the exact number beside).
    Bytes,
    /// A time in unix microseconds (shown as a UTC time and an age).
    TimeUs,
    /// A ratio.
    Ratio,
}

/// One figure of a section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// A stable name for scripts and tests (`subscribers_zstd`).
    pub key: &'static str,
    /// What the page shows beside it.
    pub label: &'static str,
    /// The value; `None` when the metrics do not have it (yet).
    pub value: Option<f64>,
    /// How to show it.
    pub unit: Unit,
}

/// An extra section of the status page, served under `sections` in the status document.
#[derive(Clone)]
pub struct Section {
    /// The section's title.
    pub name: String,
    /// Its figures now.
    pub figures: SectionFn,
}

impl Section {
    /// A section titled `name` whose figures `figures` reads from the metrics.
    pub fn new(
        name: impl Into<String>,
        figures: impl Fn(&Exposition) -> Vec<Figure> + Send + Sync + 'static,
    ) -> Section {
        Section {
            name: name.into(),
            figures: Arc::new(figures),
        }
    }
}
