//! Renderers: the human screen (colour on a TTY, NO_COLOR respected) and JSON.

pub mod human;
