//! Reading the classic builder's output: the `stream` texts of the engine's JSON messages, cut
//! into lines, with `Step 3/7 : COPY . /app` lines recognised and the last lines kept for the
//! message of a failed build.

use std::collections::VecDeque;

/// A Dockerfile step as the engine announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub number: u32,
    pub total: u32,
    pub instruction: String,
}

/// `Step 3/7 : COPY . /app` → step 3 of 7, `COPY . /app`.
pub fn parse_step(line: &str) -> Option<Step> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ")?;
    let (number, total) = counts.split_once('/')?;
    Some(Step {
        number: number.parse().ok()?,
        total: total.parse().ok()?,
        instruction: instruction.trim().to_owned(),
    })
}

/// Turns stream fragments into whole lines and remembers the last ones and the current step.
#[derive(Debug)]
pub struct Output {
    partial: String,
    tail: VecDeque<String>,
    keep: usize,
    step: Option<Step>,
}

impl Output {
    /// Keeps the last `keep` lines.
    pub fn new(keep: usize) -> Self {
        Output {
            partial: String::new(),
            tail: VecDeque::with_capacity(keep),
            keep,
            step: None,
        }
    }

    /// The complete lines `text` finishes, blank ones left out. A `\r` (a progress display
    /// rewriting its line) keeps only what a terminal would show: the text after it.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.partial.push_str(text);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.lines().filter_map(|line| self.record(line)).collect()
    }

    /// The unfinished last line, if any, once the stream ended.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        self.record(&rest)
    }

    /// The step the build is at: the last one announced.
    pub fn step(&self) -> Option<&Step> {
        self.step.as_ref()
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    fn record(&mut self, raw: &str) -> Option<String> {
        let shown = raw.trim_end_matches('\r');
        let line = without_escapes(shown.rsplit('\r').next().unwrap_or(shown));
        if line.trim().is_empty() {
            return None;
        }
        if let Some(step) = parse_step(&line) {
            self.step = Some(step);
        }
        if self.keep > 0 {
            if self.tail.len() == self.keep {
                self.tail.pop_front();
            }
            self.tail.push_back(line.clone());
        }
        Some(line)
    }
}

/// `line` without terminal escape sequences: the engine colours a step's stderr
/// (`\x1b[91m…\x1b[0m`), and programs run by a step colour their own output.
fn without_escapes(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            plain.push(c);
            continue;
        }
        // CSI (`ESC [ … final byte`); other escapes are two characters.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    plain
}

/// The engine's message for a failed `RUN`, shortened when it only repeats the command the step
/// shows: `The command '/bin/sh -c make' returned a non-zero code: 2` → `the command exited with
/// code 2`.
pub fn failure_message(message: &str) -> String {
    let message = message.trim();
    match message.rsplit_once("' returned a non-zero code: ") {
        Some((command, code)) if command.starts_with("The command '") => {
            format!("the command exited with code {code}")
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_recognised() {
        assert_eq!(
            parse_step("Step 3/7 : COPY . /app"),
            Some(Step {
                number: 3,
                total: 7,
                instruction: "COPY . /app".to_owned()
            })
        );
        assert_eq!(
            parse_step("Step 12/12 : CMD [\"sh\", \"-c\", \"a : b\"]").map(|s| s.instruction),
            Some("CMD [\"sh\", \"-c\", \"a : b\"]".to_owned())
        );
        assert_eq!(parse_step(" ---> Using cache"), None);
        assert_eq!(parse_step("Step x/7 : RUN a"), None);
        assert_eq!(parse_step("Stepping 1/2 : RUN a"), None);
    }

    #[test]
    fn fragments_become_lines_and_the_tail_is_kept() {
        let mut output = Output::new(3);
        assert!(output.push("Step 1/2 : FROM scr").is_empty());
        assert_eq!(
            output.push("atch\n ---> \n"),
            ["Step 1/2 : FROM scratch", " ---> "]
        );
        assert_eq!(output.step().map(|s| s.number), Some(1));
        assert_eq!(output.push("Step 2/2 : RUN x\n"), ["Step 2/2 : RUN x"]);
        assert_eq!(output.push("10%\r50%\r100%\r\n\n"), ["100%"]);
        assert_eq!(output.push("no newline"), Vec::<String>::new());
        assert_eq!(output.finish().as_deref(), Some("no newline"));
        assert_eq!(output.finish(), None);
        assert_eq!(output.tail(), ["Step 2/2 : RUN x", "100%", "no newline"]);
        assert_eq!(output.step().map(|s| s.instruction.as_str()), Some("RUN x"));
    }

    #[test]
    fn colours_are_dropped() {
        let mut output = Output::new(2);
        assert_eq!(
            output.push("\x1b[91mapp.c:3: error\n\x1b[0mdone \x1b[1;32mok\x1b[0m\n"),
            ["app.c:3: error", "done ok"]
        );
    }

    #[test]
    fn a_failed_run_says_its_exit_code() {
        assert_eq!(
            failure_message("The command '/bin/sh -c make' returned a non-zero code: 2"),
            "the command exited with code 2"
        );
        assert_eq!(
            failure_message("COPY failed: file not found in build context"),
            "COPY failed: file not found in build context"
        );
    }
}
