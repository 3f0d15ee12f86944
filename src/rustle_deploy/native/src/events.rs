//! The event stream (protocol 1): one JSON object per line on stdout and in the journal, as the
//! Python runtime's `events.py`.
//!
//! Every line is flushed as soon as it is written, so the controller sees progress live. Values
//! of `no_log` results never reach this module: `censor` replaces them first.

use crate::json::{to_string, Map, Value};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub const CENSORED: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// Keys of a result that are safe to show even under no_log.
const NO_LOG_KEEP: [&str; 13] = [
    "event", "id", "task", "module", "status", "ignored", "duration", "handler", "changed",
    "failed", "skipped", "attempts", "rc",
];

/// A copy of `event` with every value hidden but its status keys.
pub fn censor(event: &Map) -> Map {
    let mut out = Map::new();
    for key in NO_LOG_KEEP.iter() {
        if let Some(value) = event.get(key) {
            out.insert(key, value.clone());
        }
    }
    out.insert("censored", Value::from(CENSORED));
    if let Some(results) = event.get("results") {
        let items = results.as_list().map(|items| {
            items
                .iter()
                .map(|r| Value::Dict(censor(r.as_dict().unwrap_or(&Map::new()))))
                .collect()
        });
        out.insert("results", Value::List(items.unwrap_or_default()));
    }
    out
}

/// What a failing journal write does instead of ending the process with exit 1: the deploy
/// agent, running the plan in its own process, reports it as its error line (agent.rs).
static ON_JOURNAL_ERROR: std::sync::Mutex<Option<fn(&str, &io::Error)>> = std::sync::Mutex::new(None);

pub fn on_journal_error(hook: fn(&str, &io::Error)) {
    *ON_JOURNAL_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
}

/// Writes events to stdout and, when given, appends them to a journal file (0600).
pub struct Emitter {
    journal: Option<File>,
    path: String,
}

impl Emitter {
    /// An emitter; the journal's parent directories are created (0700) when missing.
    pub fn new(journal: Option<&Path>) -> io::Result<Emitter> {
        let path = journal.map(|p| p.display().to_string()).unwrap_or_default();
        let journal = match journal {
            None => None,
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(parent)?;
                }
                Some(
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .mode(0o600)
                        .open(path)?,
                )
            }
        };
        Ok(Emitter { journal, path })
    }

    /// Write one event line; a closed stdout (the controller went away) is not an error.
    pub fn emit(&mut self, event: &Map) {
        crate::sys::park_if_stopping(); // the agent is ending the run: its journal line is the last
        let mut line = to_string(&Value::Dict(event.clone()));
        line.push('\n');
        to_stdout(&line);
        if let Some(journal) = self.journal.as_mut() {
            // as Python's os.write: a failing journal write ends the run with an error
            if let Err(e) = journal.write_all(line.as_bytes()) {
                let hook = *ON_JOURNAL_ERROR.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(hook) = hook {
                    hook(&self.path, &e);
                }
                eprintln!("rustle-runner: error: cannot write the journal: {}", e);
                std::process::exit(1);
            }
        }
    }
}

/// One line to stdout, flushed; a closed stdout (the controller went away) is ignored.
#[cfg(not(test))]
fn to_stdout(line: &str) {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
}

/// Under `cargo test` through `print!`, which the test harness captures.
#[cfg(test)]
fn to_stdout(line: &str) {
    print!("{}", line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn censor_keeps_status_keys_only() {
        let event = parse(
            r#"{"event": "task_result", "id": "t", "task": "x", "module": "shell", "status": "ok",
                "ignored": false, "rc": 0, "stdout": "secret", "msg": "secret", "changed": true,
                "results": [{"status": "ok", "stdout": "s", "item": "pw"}], "duration": 0.1}"#,
        )
        .unwrap();
        let out = censor(event.as_dict().unwrap());
        assert_eq!(
            to_string(&Value::Dict(out)),
            format!(
                r#"{{"event": "task_result", "id": "t", "task": "x", "module": "shell", "status": "ok", "ignored": false, "duration": 0.1, "changed": true, "rc": 0, "censored": "{c}", "results": [{{"status": "ok", "censored": "{c}"}}]}}"#,
                c = CENSORED
            )
        );
    }

    #[test]
    fn journal_is_appended_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rr-events-{}", std::process::id()));
        let path = dir.join("sub/journal.jsonl");
        for _ in 0..2 {
            let mut emitter = Emitter::new(Some(&path)).unwrap();
            emitter.emit(parse(r#"{"event": "x"}"#).unwrap().as_dict().unwrap());
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"event\": \"x\"}\n{\"event\": \"x\"}\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("sub")) & 0o700, 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
