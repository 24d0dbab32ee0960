//! The look shared by every row: the layout of a running row, and the line a finished one
//! leaves (a green tick or a red cross, plain without colour).

use indicatif::ProgressStyle;

/// A bar style from `template`, or the default bar if the template does not parse.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A running row: spinner, name, a bar of 20, then the view's own placeholders (`rest`, e.g.
/// `{pos}/{len} {wide_msg}`), so the columns of every view line up.
pub fn running(color: bool, rest: &str) -> ProgressStyle {
    let template = if color {
        format!("{{spinner:.cyan}} {{prefix:>10.bold}} [{{bar:20.cyan/blue}}] {rest}")
    } else {
        format!("{{spinner}} {{prefix:>10}} [{{bar:20}}] {rest}")
    };
    style(&template).progress_chars("=> ")
}

/// The style of a row that is only its message: a finished row shows its [`done_line`].
pub fn line() -> ProgressStyle {
    style("{msg}")
}

/// What a finished row says, in the columns of a running one: `✓    backend built … in 1.2s`.
pub fn done_line(color: bool, ok: bool, prefix: &str, text: &str) -> String {
    match (color, ok) {
        (true, true) => format!("\x1b[32m✓\x1b[0m \x1b[1m{prefix:>10}\x1b[0m {text}"),
        (true, false) => format!("\x1b[31m✗\x1b[0m \x1b[1m{prefix:>10}\x1b[0m {text}"),
        (false, true) => format!("✓ {prefix:>10} {text}"),
        (false, false) => format!("✗ {prefix:>10} {text}"),
    }
}
