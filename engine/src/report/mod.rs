//! Renderers of the human screens: the verdict, a rule's documentation, suggestions, signals.
//!
//! JSON needs no renderer: every model (`Diagnosis`, `Evidence`, `Suggestion`, `Signals`,
//! `lint::LintReport`) is serialisable and is printed as it is, under its own `schema_version`.
//! Colour is the caller's choice, passed in as a `Style`; text from the host goes through
//! `text::printable`.

pub mod doc;
pub mod human;
pub mod signals;
pub mod style;
pub mod suggest;
pub mod text;

pub use style::Style;
