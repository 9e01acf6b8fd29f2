//! The one-screen human verdict.
