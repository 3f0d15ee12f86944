//! Run a task's module as its `become_user` (the Python runtime's `become.py`): in a child
//! `rustle-runner become-worker` started through `sudo -n -H -u USER --`, or `su` when the
//! runner is root, one child per identity for the whole run.
//!
//! Every module the runner implements runs as that user except `assert`, `debug` and `set_fact`, which
//! Ansible runs on its controller. The child gets one task per line on stdin (module, rendered
//! arguments, check and diff mode, environment, and the task's own embedded files) and answers
//! its result as one line (JSON both ways). The installed runner is private (`runners/` is 0700
//! in a 0700 directory), so the child runs a copy of this executable made once per run in a
//! fresh temporary directory: directory and file 0711, executable by any user but readable
//! by none; the copy is removed when the run ends.

use crate::json::{self, Map, Value};
use crate::modules::{self, Ctx};
use crate::sys;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// Modules Ansible runs on the controller: no become applies to them.
pub const CONTROLLER_SIDE: [&str; 4] = ["assert", "debug", "fail", "set_fact"];

/// `(method, user)` when `module` must run as another user, None when in this process; Err
/// with the task's failure message for a method that would need a password prompt.
pub fn identity(asked: Option<&Value>, module: &str) -> Result<Option<(String, String)>, String> {
    let asked = match asked.and_then(Value::as_dict) {
        Some(asked) => asked,
        None => return Ok(None),
    };
    let user = asked.get("user").and_then(Value::as_str).unwrap_or("root");
    let method = asked.get("method").and_then(Value::as_str).unwrap_or("sudo");
    let me = sys::user_name(sys::euid()).unwrap_or_else(|| sys::euid().to_string());
    if CONTROLLER_SIDE.contains(&module) || user == me {
        return Ok(None);
    }
    if method == "sudo" || (method == "su" && sys::euid() == 0) {
        return Ok(Some((method.to_string(), user.to_string())));
    }
    Err(format!(
        "become_method '{}' cannot be used without a password prompt on the host; \
         hint: use become_method: sudo with NOPASSWD for this user",
        method
    ))
}

/// The run's children, one per identity, and the copy of this executable they run.
#[derive(Default)]
pub struct Children {
    children: Vec<((String, String), Worker)>,
    copy: Option<PathBuf>,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    answered: bool,
}

impl Children {
    /// The result of `request` (one task) run as `key` = (method, user); Err: the failure message.
    pub fn run(&mut self, key: &(String, String), request: &Map) -> Result<Map, String> {
        if !self.children.iter().any(|(k, _)| k == key) {
            let worker = self.start(key)?;
            self.children.push((key.clone(), worker));
        }
        let index = self.children.iter().position(|(k, _)| k == key).unwrap_or(0);
        let outcome = self.children[index].1.call(request);
        match outcome {
            Ok(Value::Dict(mut result)) => {
                for private in ["_set_fact", "_meta"] {
                    result.remove(private);
                }
                Ok(result)
            }
            Ok(other) => {
                let (key, worker) = self.children.remove(index);
                worker.end(true);
                Err(format!(
                    "become: the process running as '{}' answered {}, not a result",
                    key.1,
                    json::type_name(&other)
                ))
            }
            Err(e) => {
                let (key, worker) = self.children.remove(index);
                Err(worker.died(&key, e))
            }
        }
    }

    fn start(&mut self, key: &(String, String)) -> Result<Worker, String> {
        let exe = match &self.copy {
            Some(exe) => exe.clone(),
            None => {
                let exe = shared_copy().map_err(|e| format!("become: cannot copy the runner for '{}': {}", key.1, e))?;
                self.copy = Some(exe.clone());
                exe
            }
        };
        let exe = exe.to_string_lossy().into_owned();
        // sudo and su reset the environment; the deploy agent finds the run's processes by this
        let mark: Vec<String> = match std::env::var("RUSTLE_RUN_MARK") {
            Ok(mark) if !mark.is_empty() => vec!["env".to_string(), format!("RUSTLE_RUN_MARK={}", mark)],
            _ => Vec::new(),
        };
        let mut cmd = if key.0 == "sudo" {
            let mut cmd = Command::new("sudo");
            cmd.args(["-n", "-H", "-u", key.1.as_str(), "--"]).args(&mark).args([exe.as_str(), "become-worker"]);
            cmd
        } else {
            let mut cmd = Command::new("su");
            let words: Vec<String> = mark.iter().chain(std::iter::once(&exe)).map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect();
            cmd.args(["-s", "/bin/sh", key.1.as_str(), "-c"]).arg(format!("exec {} become-worker", words.join(" ")));
            cmd
        };
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        sys::new_session(&mut cmd);
        sys::park_if_stopping();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("become: cannot start {} to run as '{}': {}", key.0, key.1, sys::strerror(&e)))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            text
        });
        Ok(Worker { child, stdin, stdout, stderr: Some(stderr), answered: false })
    }

    /// End every child (each exits at the end of its stdin) and remove the runner's copy.
    pub fn close(&mut self) {
        for (_, worker) in self.children.drain(..) {
            worker.end(false);
        }
        if let Some(exe) = self.copy.take() {
            if let Some(dir) = exe.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.close();
    }
}

impl Worker {
    fn call(&mut self, request: &Map) -> io::Result<Value> {
        let mut line = json::to_string_ascii(&Value::Dict(request.clone()));
        line.push('\n');
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes())?,
            None => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed")),
        }
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
        }
        self.answered = true;
        json::parse(answer.trim_end()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The failure message for a child that could not answer; it is ended and reaped.
    fn died(mut self, key: &(String, String), _error: io::Error) -> String {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if text.contains("a password is required") || text.contains("a terminal is required") {
            return format!(
                "become: sudo needs a password to run as '{}' on this host; \
                 hint: grant NOPASSWD sudo to the deploying user, or connect as '{}'",
                key.1, key.1
            );
        }
        let last = text.lines().last().unwrap_or("no output").to_string();
        if !self.answered {
            return format!(
                "become: cannot start the runner as '{}' with {}: {}; hint: its copy is made in \
                 TMPDIR (or /tmp), which must allow executables; or use --format pyz",
                key.1, key.0, last
            );
        }
        format!("become: the process running as '{}' ended during the task: {}", key.1, last)
    }

    fn end(mut self, kill: bool) {
        self.stdin = None; // the child reads the end of its stdin and exits
        if kill {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(handle) = self.stderr.take() {
            let _ = handle.join();
        }
    }
}

/// A copy of this executable that any user may run but none may read, in a fresh directory.
fn shared_copy() -> io::Result<PathBuf> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let exe = std::env::current_exe()?;
    let data = std::fs::read(&exe)?;
    let dir = sys::fresh_dir("rustle-become", 0o711)?;
    let path = dir.join("rustle-runner");
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o700).open(&path)?;
        file.write_all(&data)?;
        drop(file);
        // the umask may have narrowed the directory's mode
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))
    })();
    match written {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// `rustle-runner become-worker`: answer task requests (one JSON line each) until stdin ends.
pub fn worker_main() -> i32 {
    use std::os::unix::io::FromRawFd;
    // keep the channel to ourselves: stray output goes to stderr, stdin reads nothing
    let channel = (|| -> io::Result<(std::fs::File, std::fs::File)> {
        let input = sys::dup_fd(0)?;
        let output = sys::dup_fd(1)?;
        let null = std::fs::File::open("/dev/null")?;
        use std::os::unix::io::AsRawFd;
        sys::dup2_fd(null.as_raw_fd(), 0)?;
        sys::dup2_fd(2, 1)?;
        Ok(unsafe { (std::fs::File::from_raw_fd(input), std::fs::File::from_raw_fd(output)) })
    })();
    let (input, mut output) = match channel {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("rustle-runner: error: become-worker: {}", sys::strerror(&e));
            return 1;
        }
    };
    let mut input = BufReader::new(input);
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(e) => {
                eprintln!("rustle-runner: error: become-worker: {}", sys::strerror(&e));
                return 1;
            }
        }
        let result = match json::parse(line.trim_end()) {
            Ok(Value::Dict(request)) => task(&request),
            Ok(_) | Err(_) => {
                eprintln!("rustle-runner: error: become-worker: unreadable request");
                return 1;
            }
        };
        let mut answer = json::to_string_ascii(&Value::Dict(result));
        answer.push('\n');
        if output.write_all(answer.as_bytes()).and_then(|_| output.flush()).is_err() {
            return 0; // the runner went away
        }
    }
}

fn task(request: &Map) -> Map {
    let empty = Map::new();
    let dict = |key: &str| request.get(key).and_then(Value::as_dict).unwrap_or(&empty);
    let flag = |key: &str| request.get(key).and_then(Value::as_bool).unwrap_or(false);
    let module = request.get("module").and_then(Value::as_str).unwrap_or("");
    let mut ctx = Ctx {
        module,
        check: flag("check"),
        diff: flag("diff"),
        environment: dict("environment"),
        files: dict("files"),
        warnings: Vec::new(),
    };
    let timeout = request.get("timeout").and_then(Value::as_f64);
    modules::command::with_deadline(timeout, || modules::call(module, &mut ctx, dict("args"), None))
}

/// The embedded files `args` names (copy/template `src`), for a request: sha256 -> base64.
pub fn task_files(args: &Map, files: &Map) -> Map {
    let mut out = Map::new();
    if let Some(sha) = args.get("src").and_then(|s| s.get("sha256")).and_then(Value::as_str) {
        if let Some(data) = files.get(sha) {
            out.insert(sha, data.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(user: &str, method: &str) -> Value {
        let mut b = Map::new();
        b.insert("user", Value::from(user));
        b.insert("method", Value::from(method));
        Value::Dict(b)
    }

    #[test]
    fn identity_keeps_controller_side_modules_and_the_same_user_in_process() {
        let me = sys::user_name(sys::euid()).unwrap();
        assert_eq!(identity(None, "file"), Ok(None));
        assert_eq!(identity(Some(&asking(&me, "sudo")), "file"), Ok(None));
        assert_eq!(identity(Some(&asking("someone-else", "sudo")), "debug"), Ok(None));
        assert_eq!(
            identity(Some(&asking("someone-else", "sudo")), "copy"),
            Ok(Some(("sudo".to_string(), "someone-else".to_string())))
        );
        let doas = identity(Some(&asking("someone-else", "doas")), "copy").unwrap_err();
        assert!(doas.contains("without a password prompt"), "{}", doas);
    }

    #[test]
    fn the_copy_is_executable_by_all_and_readable_by_none() {
        use std::os::unix::fs::PermissionsExt;
        let exe = shared_copy().unwrap();
        let dir = exe.parent().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777, 0o711);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o711);
        assert_eq!(std::fs::read(&exe).unwrap(), std::fs::read(std::env::current_exe().unwrap()).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_task_request_runs_the_module_here() {
        let dir = crate::test_dir("become", "task");
        let mut args = Map::new();
        args.insert("path", Value::from(dir.join("touched").to_string_lossy().into_owned()));
        args.insert("state", Value::from("touch"));
        let mut request = Map::new();
        request.insert("module", Value::from("file"));
        request.insert("args", Value::Dict(args));
        let result = task(&request);
        assert_eq!(result.get("changed"), Some(&Value::Bool(true)), "{:?}", result);
        assert!(dir.join("touched").exists());
        let mut request = Map::new();
        request.insert("module", Value::from("file"));
        let result = task(&request);
        assert_eq!(result.get("failed"), Some(&Value::Bool(true)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_files_a_request_carries_are_the_tasks_own() {
        let mut files = Map::new();
        files.insert("aa", Value::from("YQ=="));
        files.insert("bb", Value::from("Yg=="));
        let mut src = Map::new();
        src.insert("sha256", Value::from("bb"));
        let mut args = Map::new();
        args.insert("src", Value::Dict(src));
        let out = task_files(&args, &files);
        assert_eq!(out.len(), 1);
        assert_eq!(out.get("bb"), Some(&Value::from("Yg==")));
        assert!(task_files(&Map::new(), &files).is_empty());
    }
}
