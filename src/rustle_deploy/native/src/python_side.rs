//! The host's Python for the tasks of a hybrid program the runner cannot run itself
//! (docs/native.md, "Hybrid artifacts").
//!
//! The program embeds the unit's pyz artifact. At the first task that needs it (never before:
//! a run whose Python tasks are all skipped by tags starts no Python) the runner writes that
//! artifact into a fresh private directory under TMPDIR (or /tmp) and starts
//! `INTERPRETER ARTIFACT serve` (the first of the program's `interpreters` present) (the runtime's `serve.py`) once for the run. The first line it
//! sends says how the run goes; then each task is one JSON line each way. The child ends at
//! the end of its stdin, when the run ends; the directory is removed then.

use crate::b64;
use crate::json::{self, Map, Value};
use crate::sys;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// The run's Python child, started at the first request.
#[derive(Default)]
pub struct PythonSide {
    worker: Option<Worker>,
    dir: Option<PathBuf>,
    /// why it could not start or died: every later Python task fails with this
    broken: Option<String>,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl PythonSide {
    /// The answer to `request` (one task); `python` is the program's `python` entry, `files`
    /// the artifact's embedded files and `start` the first line for a child started now.
    /// Err: why the task could not run there (the task's failure message).
    pub fn call(&mut self, python: &Map, files: &Map, start: &Map, request: &Map) -> Result<Map, String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        if self.worker.is_none() {
            match self.start(python, files, start) {
                Ok(worker) => self.worker = Some(worker),
                Err(why) => {
                    self.broken = Some(why.clone());
                    return Err(why);
                }
            }
        }
        let worker = self.worker.as_mut().expect("started");
        match worker.call(request) {
            Ok(Value::Dict(answer)) => Ok(answer),
            Ok(other) => Err(self.died(format!("it answered {}, not a result", json::type_name(&other)))),
            Err(e) => Err(self.died(e.to_string())),
        }
    }

    fn start(&mut self, python: &Map, files: &Map, start: &Map) -> Result<Worker, String> {
        // the first of the candidates that is there (a name without a slash: from PATH)
        let candidates: Vec<String> = python
            .get("interpreters")
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let interpreter = candidates
            .iter()
            .find(|c| !c.contains('/') || std::path::Path::new(c.as_str()).exists())
            .or_else(|| candidates.last())
            .map_or("python3", String::as_str);
        let sha = python.get("runtime").and_then(Value::as_str).unwrap_or("");
        let data = files
            .get(sha)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the artifact lacks its Python runtime ({})", sha))
            .and_then(b64::decode)?;
        let dir = private_dir().map_err(|e| format!("cannot write the Python runtime under TMPDIR: {}", sys::strerror(&e)))?;
        self.dir = Some(dir.clone());
        let path = dir.join("runtime.pyz");
        std::fs::write(&path, &data)
            .map_err(|e| format!("{}: cannot write the Python runtime: {}", path.display(), sys::strerror(&e)))?;
        let mut cmd = Command::new(interpreter);
        cmd.arg(&path).arg("serve");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        sys::park_if_stopping();
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "this task runs in the host's Python (the plan is hybrid: the runner does not do it) and '{}' \
                 cannot be started: {}; hint: install Python 3.8 or newer on the host (or set \
                 ansible_python_interpreter), or use --format native with a plan that lowers whole",
                interpreter,
                sys::strerror(&e)
            )
        })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            text
        });
        let mut worker = Worker { child, stdin, stdout, stderr: Some(stderr) };
        if let Err(e) = worker.send(start) {
            self.worker = Some(worker);
            return Err(self.died(e.to_string()));
        }
        Ok(worker)
    }

    /// The failure message for a child that could not answer; it is ended and reaped, and
    /// every later Python task of the run fails with the same message.
    fn died(&mut self, error: String) -> String {
        let text = match self.worker.take() {
            Some(mut worker) => {
                worker.stdin = None;
                let _ = worker.child.kill();
                let _ = worker.child.wait();
                worker.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let last = text.lines().last().map_or(error, str::to_string);
        let why = format!("the host's Python running this plan's Python tasks ended: {}", last);
        self.broken = Some(why.clone());
        why
    }

    /// End the child (it exits at the end of its stdin) and remove its directory.
    pub fn close(&mut self) {
        if let Some(mut worker) = self.worker.take() {
            worker.stdin = None;
            let _ = worker.child.wait();
            if let Some(handle) = worker.stderr.take() {
                if let Ok(text) = handle.join() {
                    let _ = io::stderr().write_all(&text); // its warnings, as a pyz run shows them
                }
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for PythonSide {
    fn drop(&mut self) {
        self.close();
    }
}

impl Worker {
    fn send(&mut self, request: &Map) -> io::Result<()> {
        let mut line = json::to_string_ascii(&Value::Dict(request.clone()));
        line.push('\n');
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes()),
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
        }
    }

    fn call(&mut self, request: &Map) -> io::Result<Value> {
        self.send(request)?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
        }
        json::parse(answer.trim_end()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// A fresh directory (0700) under TMPDIR (or /tmp) for the run's copy of the Python runtime.
fn private_dir() -> io::Result<PathBuf> {
    sys::fresh_dir("rustle-python", 0o700)
}
