//! The look shared by every progress bar: a template with a safe fallback, and the finished line.

use indicatif::ProgressStyle;

/// A bar style from `template`, or the default bar if the template does not parse.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The line a finished bar leaves: a green tick or a red cross (plain without colour).
pub fn done_style(color: bool, ok: bool) -> ProgressStyle {
    let template = match (color, ok) {
        (true, true) => "\u{1b}[32m✓\u{1b}[0m {prefix:>10.bold} {wide_msg}",
        (true, false) => "\u{1b}[31m✗\u{1b}[0m {prefix:>10.bold} {wide_msg}",
        (false, true) => "✓ {prefix:>10} {wide_msg}",
        (false, false) => "✗ {prefix:>10} {wide_msg}",
    };
    style(template)
}
