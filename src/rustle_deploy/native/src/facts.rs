//! The host facts a native program may use: the same names, values and types as the Python
//! runtime's `facts.gather()` (`runtime/rustle_runtime/facts.py`), minus the facts the compiler
//! refuses for native plans (`fqdn`, `domain`, `python*`, `date_time`, `default_ipv4`).
//!
//! `gather()` returns them prefixed with `ansible_`, in Python's order; `unprefixed()` is the
//! `ansible_facts` dict. Where facts.py would raise (an os-release `NAME` that is blank, empty
//! parentheses in `VERSION`), this module gives "Linux" / "" instead.

use crate::expr::py_isspace;
use crate::json::{Map, Value};
use crate::sys;
use std::path::Path;

/// `facts._DISTRIBUTIONS`: os-release `ID` -> (distribution, os_family).
const DISTRIBUTIONS: [(&str, &str, &str); 21] = [
    ("ubuntu", "Ubuntu", "Debian"),
    ("debian", "Debian", "Debian"),
    ("raspbian", "Debian", "Debian"),
    ("linuxmint", "Linux Mint", "Debian"),
    ("pop", "Pop!_OS", "Debian"),
    ("kali", "Kali", "Debian"),
    ("centos", "CentOS", "RedHat"),
    ("rhel", "RedHat", "RedHat"),
    ("fedora", "Fedora", "RedHat"),
    ("rocky", "Rocky", "RedHat"),
    ("almalinux", "AlmaLinux", "RedHat"),
    ("ol", "OracleLinux", "RedHat"),
    ("amzn", "Amazon", "RedHat"),
    ("alpine", "Alpine", "Alpine"),
    ("arch", "Archlinux", "Archlinux"),
    ("manjaro", "Archlinux", "Archlinux"),
    ("opensuse-leap", "openSUSE Leap", "Suse"),
    ("opensuse-tumbleweed", "openSUSE Tumbleweed", "Suse"),
    ("sles", "SLES", "Suse"),
    ("gentoo", "Gentoo", "Gentoo"),
    ("freebsd", "FreeBSD", "FreeBSD"),
];

/// `facts._PKG_MGRS`: the first path that exists names the package manager.
const PKG_MGRS: [(&str, &str); 9] = [
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/dnf", "dnf"),
    ("/usr/bin/yum", "yum"),
    ("/sbin/apk", "apk"),
    ("/usr/bin/zypper", "zypper"),
    ("/usr/bin/pacman", "pacman"),
    ("/usr/sbin/pkg", "pkgng"),
    ("/usr/local/bin/brew", "homebrew"),
    ("/opt/homebrew/bin/brew", "homebrew"),
];

fn distribution(id: &str) -> Option<(&'static str, &'static str)> {
    DISTRIBUTIONS
        .iter()
        .find(|(key, _, _)| *key == id)
        .map(|(_, name, family)| (*name, *family))
}

/// `facts._read`: the file as text (UTF-8, invalid bytes replaced, universal newlines), None
/// when it cannot be read.
fn read(path: &str) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    Some(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// `_read(path) or ...`: an empty file counts as missing.
fn read_nonempty(path: &str) -> Option<String> {
    read(path).filter(|t| !t.is_empty())
}

/// Python's `str.splitlines()`.
fn splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some((j, '\n')) = chars.peek().cloned() {
                    chars.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Python's `str.strip()`.
fn strip(text: &str) -> &str {
    text.trim_matches(py_isspace)
}

/// Python's `str.split()` (runs of whitespace, no empty parts).
fn split_ws(text: &str) -> Vec<&str> {
    text.split(py_isspace).filter(|s| !s.is_empty()).collect()
}

/// `facts._os_release` over the file's text.
pub fn parse_os_release(text: &str) -> Map {
    let mut out = Map::new();
    for line in splitlines(text) {
        if line.contains('=') && !line.starts_with('#') {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            let value = strip(value).trim_matches('"').trim_matches('\'');
            out.insert(strip(key), Value::from(value));
        }
    }
    out
}

/// `facts._distribution(system)` for Linux, from the os-release text and /etc/debian_version.
fn linux_distribution(
    os_release: &str,
    debian_version: Option<&str>,
) -> Vec<(&'static str, String)> {
    let rel = parse_os_release(os_release);
    let get = |key: &str| {
        rel.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let dist_id = get("ID").to_lowercase();
    let (name, family) = match distribution(&dist_id) {
        Some((name, family)) => (name.to_string(), family.to_string()),
        None => {
            let like = get("ID_LIKE").to_lowercase();
            let family = split_ws(&like)
                .into_iter()
                .find_map(distribution)
                .map(|(_, family)| family.to_string());
            let name = if rel.is_empty() {
                "Linux".to_string()
            } else {
                let name = rel.get("NAME").and_then(Value::as_str).unwrap_or("Linux");
                // facts.py raises IndexError on a blank NAME
                split_ws(name).first().unwrap_or(&"Linux").to_string()
            };
            let family = match family {
                Some(f) if !f.is_empty() => f,
                _ => name.clone(),
            };
            (name, family)
        }
    };
    let mut version = get("VERSION_ID");
    if dist_id == "debian" {
        let deb = strip(debian_version.unwrap_or("")).to_string();
        if deb.chars().next().map_or(false, |c| c.is_ascii_digit()) {
            version = deb;
        }
    }
    let mut release = get("VERSION_CODENAME");
    if release.is_empty() {
        release = get("UBUNTU_CODENAME");
    }
    let full = get("VERSION");
    if release.is_empty() && full.contains('(') {
        let inner = full.split_once('(').map_or("", |(_, rest)| rest);
        let inner = inner.split_once(')').map_or(inner, |(head, _)| head);
        // facts.py raises IndexError on empty parentheses
        release = split_ws(inner)
            .first()
            .map_or(String::new(), |w| w.to_lowercase());
    }
    let major = version.split('.').next().unwrap_or("").to_string();
    vec![
        ("distribution", name),
        ("os_family", family),
        ("distribution_version", version),
        ("distribution_major_version", major),
        ("distribution_release", release),
    ]
}

fn distribution_facts(system: &str, release: &str) -> Vec<(&'static str, String)> {
    if system != "Linux" {
        let major = release.split('.').next().unwrap_or("").to_string();
        return vec![
            ("distribution", system.to_string()),
            ("os_family", system.to_string()),
            ("distribution_version", release.to_string()),
            ("distribution_major_version", major),
            ("distribution_release", release.to_string()),
        ];
    }
    let text = read_nonempty("/etc/os-release")
        .or_else(|| read_nonempty("/usr/lib/os-release"))
        .unwrap_or_default();
    let debian = read("/etc/debian_version");
    linux_distribution(&text, debian.as_deref())
}

/// `facts._service_mgr`.
fn service_mgr() -> String {
    let comm = strip(&read("/proc/1/comm").unwrap_or_default()).to_string();
    if comm == "systemd" || Path::new("/run/systemd/system").is_dir() {
        return "systemd".into();
    }
    if Path::new("/sbin/openrc-run").exists() || Path::new("/run/openrc").is_dir() {
        return "openrc".into();
    }
    if cfg!(target_os = "macos") {
        return "launchd".into();
    }
    if Path::new("/sbin/initctl").exists() && Path::new("/etc/init").is_dir() {
        return "upstart".into();
    }
    if comm.is_empty() {
        "service".into()
    } else {
        comm
    }
}

/// `facts._memtotal_mb`: an int, or None.
fn memtotal_mb() -> Value {
    for line in splitlines(&read("/proc/meminfo").unwrap_or_default()) {
        if line.starts_with("MemTotal:") {
            if let Some(kb) = split_ws(line).get(1).and_then(|n| n.parse::<i64>().ok()) {
                return Value::Int(kb.div_euclid(1024));
            }
        }
    }
    let bytes = sys::physical_memory();
    Value::Int(bytes.div_euclid(1024 * 1024))
}

/// `dict(os.environ)`: the first of duplicate names wins, as in Python.
fn environment() -> Map {
    let mut out = Map::new();
    for (key, value) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if !out.contains_key(&key) {
            out.insert(&key, Value::from(value.to_string_lossy().into_owned()));
        }
    }
    out
}

/// `facts._user`.
fn user_facts() -> Vec<(&'static str, Value)> {
    let uid = sys::uid();
    let gid = sys::gid() as i64;
    match sys::user_entry(uid) {
        Some(pw) => vec![
            ("user_id", Value::from(pw.name)),
            ("user_uid", Value::Int(uid as i64)),
            ("user_gid", Value::Int(gid)),
            ("user_dir", Value::from(pw.dir)),
            ("user_shell", Value::from(pw.shell)),
            ("user_gecos", Value::from(pw.gecos)),
        ],
        None => vec![
            ("user_id", Value::from(uid.to_string())),
            ("user_uid", Value::Int(uid as i64)),
            ("user_gid", Value::Int(gid)),
            (
                "user_dir",
                Value::from(std::env::var("HOME").unwrap_or_default()),
            ),
            ("user_shell", Value::from("")),
            ("user_gecos", Value::from("")),
        ],
    }
}

/// Ansible's fips fact: the kernel's FIPS mode switch reads `1`.
fn fips() -> bool {
    std::fs::read_to_string("/proc/sys/crypto/fips_enabled")
        .map(|text| text.trim() == "1")
        .unwrap_or(false)
}

/// The facts, every name prefixed with `ansible_` (`facts.gather()`, in its order).
pub fn gather() -> Map {
    let [system, nodename, release, version, machine] = sys::uname_fields();
    let hostname = sys::hostname();
    let cpus = sys::cpu_count().unwrap_or(1);
    let nproc = sys::affinity_count().unwrap_or(cpus);
    let pkg_mgr = PKG_MGRS
        .iter()
        .find(|(path, _)| Path::new(path).exists())
        .map_or("unknown", |(_, name)| *name);
    let mut facts: Vec<(&str, Value)> = vec![
        ("system", Value::from(system.as_str())),
        ("kernel", Value::from(release.as_str())),
        ("kernel_version", Value::from(version)),
        ("machine", Value::from(machine.as_str())),
        ("architecture", Value::from(machine.as_str())),
        (
            "hostname",
            Value::from(hostname.split('.').next().unwrap_or("")),
        ),
        ("nodename", Value::from(nodename)),
        ("pkg_mgr", Value::from(pkg_mgr)),
        ("service_mgr", Value::from(service_mgr())),
        ("env", Value::Dict(environment())),
        ("processor_vcpus", Value::Int(cpus)),
        ("processor_nproc", Value::Int(nproc)),
        ("processor_count", Value::Int(cpus)),
        ("memtotal_mb", memtotal_mb()),
        ("fips", Value::Bool(fips())),
    ];
    for (key, value) in distribution_facts(&system, &release) {
        facts.push((key, Value::from(value)));
    }
    facts.extend(user_facts());
    let mut out = Map::new();
    for (key, value) in facts {
        out.insert(&format!("ansible_{}", key), value);
    }
    out
}

/// `facts.unprefixed`: `ansible_facts`, the same facts without the prefix.
pub fn unprefixed(facts: &Map) -> Map {
    let mut out = Map::new();
    for (key, value) in facts.iter() {
        let key = key.strip_prefix("ansible_").unwrap_or(key);
        out.insert(key, value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_string};
    use std::process::Command;

    /// The runtime beside this crate (the one these sources ship with), and any python3:
    /// the runtime is standard library only.
    const RUNTIME: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime");

    /// Run `code` with the runtime importable and `env` as the whole environment; its stdout
    /// parsed as JSON. None (the test is skipped) when there is no python3. The interpreter
    /// is python3's own executable, so that no wrapper (a pyenv shim) adds to the environment.
    fn python(code: &str, env: &Map) -> Option<Value> {
        let found = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output();
        let python = match found {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            _ => {
                eprintln!("skipped: python3 is missing");
                return None;
            }
        };
        let script = format!(
            "import sys, json; sys.path.insert(0, {:?})\n{}",
            RUNTIME, code
        );
        let mut cmd = Command::new(python);
        cmd.arg("-c").arg(script).env_clear();
        for (k, v) in env.iter() {
            cmd.env(k, v.as_str().unwrap_or(""));
        }
        let out = cmd.output().expect("python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(parse(String::from_utf8_lossy(&out.stdout).trim()).expect("json"))
    }

    #[test]
    fn every_fact_matches_python() {
        let ours = gather();
        let env = ours
            .get("ansible_env")
            .and_then(Value::as_dict)
            .unwrap()
            .clone();
        let theirs = match python(
            "from rustle_runtime.facts import gather; print(json.dumps(gather()))",
            &env,
        ) {
            Some(v) => v.as_dict().unwrap().clone(),
            None => return,
        };
        let left_out = [
            "ansible_fqdn",
            "ansible_domain",
            "ansible_python_version",
            "ansible_python",
            "ansible_date_time",
            "ansible_default_ipv4",
            "ansible_selinux_python_present",
            "ansible_selinux",
        ];
        let expected: Vec<&str> = theirs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !left_out.contains(k))
            .collect();
        let keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, expected, "the same keys in the same order");
        for (key, value) in ours.iter() {
            // to_string compares types too (1 vs 1.0 vs "1")
            assert_eq!(
                to_string(value),
                to_string(theirs.get(key).unwrap()),
                "fact {}",
                key
            );
        }
        let plain = unprefixed(&ours);
        assert_eq!(plain.get("os_family"), ours.get("ansible_os_family"));
        assert_eq!(plain.len(), ours.len());
    }

    #[test]
    fn os_release_rules_match_python() {
        let samples: [(&str, Option<&str>); 10] = [
            ("ID=debian\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n", Some("12.5\n")),
            ("ID=debian\nVERSION_ID=\"13\"\nVERSION=\"13 (Trixie)\"\n", Some("trixie/sid\n")),
            ("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\nUBUNTU_CODENAME=jammy\n", None),
            ("# c\r\nNAME='Rocky Linux'\r\nID=\"rocky\"\r\nVERSION_ID=\"9.3\"\r\nVERSION=\"9.3 (Blue Onyx)\"\r\n", None),
            ("NAME=\"Weird OS\"\nID=weird\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=2\n", None),
            ("NAME=\"Other Thing\"\nID=other\nID_LIKE=nothing\n", None),
            ("", None),
            ("JUST=1\n", None),
            ("ID = Alpine \nVERSION_ID= 3.19.1 \nNAME=\"\"Alpine Linux\"\"\n#ID=arch\nnoequals\n", None),
            ("ID=opensuse-tumbleweed\nVERSION_ID=\"20240101\"\nVERSION=\"20240101\"\n", None),
        ];
        for (text, debian) in samples.iter() {
            let files = format!(
                "{{\"/etc/os-release\": {}, \"/etc/debian_version\": {}}}",
                to_string(&Value::from(*text)),
                debian.map_or("null".to_string(), |d| to_string(&Value::from(d)))
            );
            let code = format!(
                "import rustle_runtime.facts as f\nfiles = json.loads({:?})\n\
                 f._read = lambda p: files.get(p)\nprint(json.dumps(f._distribution('Linux')))",
                files
            );
            let theirs = match python(&code, &Map::new()) {
                Some(v) => v,
                None => return,
            };
            let ours: Map = {
                let mut m = Map::new();
                for (k, v) in linux_distribution(text, *debian) {
                    m.insert(k, Value::from(v));
                }
                m
            };
            assert_eq!(
                to_string(&Value::Dict(ours)),
                to_string(&theirs),
                "{:?}",
                text
            );
        }
    }

    #[test]
    fn os_release_parsing() {
        let rel = parse_os_release("A=\"x\"\n#B=1\n C = ' y '\nD\u{2028}E=1=2\n");
        assert_eq!(
            to_string(&Value::Dict(rel)),
            r#"{"A": "x", "C": " y ", "E": "1=2"}"#
        );
        assert_eq!(splitlines("a\r\nb\n\nc"), vec!["a", "b", "", "c"]);
    }
}
