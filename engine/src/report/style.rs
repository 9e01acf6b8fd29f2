//! How a screen is painted: with ANSI colour or plain. The caller decides (the CLI looks at the
//! terminal, `NO_COLOR` and `--no-color`); renderers only follow.

/// Whether to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub const PLAIN: Self = Self { color: false };
    pub const COLOR: Self = Self { color: true };

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub(crate) fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    pub(crate) fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    pub(crate) fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub(crate) fn green(self, t: &str) -> String {
        self.paint("1;32", t)
    }
    pub(crate) fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    pub(crate) fn cyan(self, t: &str) -> String {
        self.paint("36", t)
    }
}
