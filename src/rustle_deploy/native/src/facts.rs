//! The host facts a native program may use: the same names, values and types as the Python
//! runtime's `facts.gather()` (`runtime/rustle_runtime/facts.py`, ansible-core's rules) for the
//! platform, distribution, user, env, fips, pkg_mgr, service_mgr facts and the processor and
//! memory counts (`compiler.native.NATIVE_FACTS`). The compiler refuses every other fact for
//! native plans (`--format auto` gives such hosts pyz).
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

/// `facts._content` (ansible-core's `get_file_content`): the text stripped, None when it
/// cannot be read or is empty.
fn content(path: &str) -> Option<String> {
    read(path)
        .map(|t| strip(&t).to_string())
        .filter(|t| !t.is_empty())
}

/// An executable on PATH or in the sbin directories (`facts._bin`).
fn bin_exists(name: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/sbin", "/usr/sbin", "/usr/local/sbin"])
        .filter(|dir| !dir.is_empty())
        .any(|dir| {
            std::fs::metadata(Path::new(dir).join(name))
                .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                .unwrap_or(false)
        });
    found
}

/// `facts._service_mgr` (ansible-core's ServiceMgrFactCollector): PID 1's name, mapped, else
/// the system's rules.
fn service_mgr(system: &str) -> String {
    let mut proc_1 = content("/proc/1/comm");
    if proc_1.is_none() {
        if let Ok(target) = std::fs::read_link("/sbin/init") {
            proc_1 = Some(target.to_string_lossy().into_owned());
        }
    }
    if let Some(name) = proc_1 {
        let base = strip(name.rsplit('/').next().unwrap_or("")).to_string();
        if !(base.is_empty() || base == "init" || base.ends_with("sh")) {
            return match base.as_str() {
                "procd" => "openwrt_init".into(),
                "runit-init" => "runit".into(),
                "svscan" => "svc".into(),
                "openrc-init" => "openrc".into(),
                _ => base,
            };
        }
    }
    if cfg!(target_os = "macos") {
        return "launchd".into();
    }
    if system.contains("BSD") || system == "Bitrig" || system == "DragonFly" {
        return "bsdinit".into();
    }
    if system == "Linux" {
        let systemctl = bin_exists("systemctl");
        let exists = |p: &str| Path::new(p).exists();
        let init_is_systemd = std::fs::read_link("/sbin/init")
            .map(|t| t.file_name().map_or(false, |n| n == "systemd"))
            .unwrap_or(false);
        if systemctl && ["/run/systemd/system/", "/dev/.run/systemd/", "/dev/.systemd/"].iter().any(|p| exists(p)) {
            return "systemd".into();
        } else if bin_exists("initctl") && exists("/etc/init/") {
            return "upstart".into();
        } else if exists("/sbin/openrc") {
            return "openrc".into();
        } else if systemctl && init_is_systemd {
            return "systemd".into();
        } else if exists("/etc/init.d/") {
            return "sysvinit".into();
        } else if exists("/etc/dinit.d/") {
            return "dinit".into();
        }
    }
    "service".into()
}

/// Python's `round()` of a ratio (banker's rounding, as Python 3 rounds).
fn py_round(value: f64) -> i64 {
    let floor = value.floor();
    let diff = value - floor;
    let rounded = if diff > 0.5 || (diff == 0.5 && (floor as i64) % 2 != 0) { floor + 1.0 } else { floor };
    rounded as i64
}

/// `facts.cpu_facts`: (processor_count, processor_vcpus, processor_nproc) from /proc/cpuinfo by
/// ansible-core's rules (sockets from `physical id`/`cpu cores`, threads from `siblings`).
pub fn cpu_counts(cpuinfo: &str, architecture: &str, xen: bool) -> (i64, i64, i64) {
    let (mut i, mut vendor, mut model, mut processors, mut zp) = (0i64, 0, 0, 0, 0i64);
    let (mut physid, mut coreid) = (String::from("0"), String::from("0"));
    let mut sockets: Vec<(String, i64)> = Vec::new();
    let mut cores: Vec<(String, i64)> = Vec::new();
    let mut xen_paravirt = false;
    fn set(list: &mut Vec<(String, i64)>, key: &str, value: i64, only_new: bool) {
        match list.iter_mut().find(|(k, _)| k == key) {
            Some(entry) if !only_new => entry.1 = value,
            Some(_) => {}
            None => list.push((key.to_string(), value)),
        }
    }
    for line in splitlines(cpuinfo) {
        let (key, val) = match line.split_once(':') {
            Some((k, v)) => (strip(k), strip(v)),
            None => (strip(line), ""),
        };
        if xen && key == "flags" && !val.contains("vme") {
            xen_paravirt = true;
        }
        match key {
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                vendor += (key == "vendor_id") as i64;
                model += (key == "model name") as i64;
                processors += (key == "processor") as i64;
                i += 1;
            }
            "physical id" => {
                physid = val.to_string();
                set(&mut sockets, val, 1, true);
            }
            "core id" => {
                coreid = val.to_string();
                if !sockets.iter().any(|(k, _)| k == val) {
                    set(&mut cores, val, 1, false);
                }
            }
            "cpu cores" => set(&mut sockets, &physid.clone(), val.parse().unwrap_or(0), false),
            "siblings" => set(&mut cores, &coreid.clone(), val.parse().unwrap_or(0), false),
            "# processors" => zp = val.parse().unwrap_or(0),
            "ncpus active" => i = val.parse().unwrap_or(0),
            _ => {}
        }
    }
    if vendor > 0 && vendor == model {
        i = vendor;
    }
    if architecture.starts_with("armv") || architecture.starts_with("aarch") || architecture.starts_with("ppc") {
        i = processors;
    }
    if architecture == "s390x" {
        return (1, zp, zp);
    }
    if xen_paravirt {
        return (i, i, i);
    }
    let count = if sockets.is_empty() { i } else { sockets.len() as i64 };
    let per_socket = sockets.first().map_or(0, |s| s.1);
    let cores_per = if per_socket != 0 { per_socket } else { 1 };
    let siblings = cores.first().map_or(1, |c| c.1);
    let threads = py_round(siblings as f64 / cores_per as f64);
    (count, threads * count * cores_per, processors)
}

/// `facts._cpu`: processor_count, processor_vcpus and processor_nproc (the affinity count).
fn cpu_facts(architecture: &str) -> (i64, i64, i64) {
    let cpus = sys::cpu_count().unwrap_or(1);
    let (count, vcpus, nproc) = match read("/proc/cpuinfo") {
        Some(text) => {
            let hypervisor = read("/sys/hypervisor/type").unwrap_or_default();
            let xen = Path::new("/proc/xen").exists() || strip(hypervisor.split('\n').next().unwrap_or("")) == "xen";
            cpu_counts(&text, architecture, xen)
        }
        None => (cpus, cpus, cpus),
    };
    (count, vcpus, sys::affinity_count().unwrap_or(nproc))
}

/// `facts._memtotal_mb`: an int, or None.
fn memtotal_mb() -> Value {
    if let Some(mb) = meminfo_mb("MemTotal:") {
        return Value::Int(mb);
    }
    let bytes = sys::physical_memory();
    Value::Int(bytes.div_euclid(1024 * 1024))
}

/// A /proc/meminfo line's kB in MB (`facts._memory`); None without the file or the line.
fn meminfo_mb(key: &str) -> Option<i64> {
    for line in splitlines(&read("/proc/meminfo").unwrap_or_default()) {
        if line.starts_with(key) {
            return split_ws(line).get(1).and_then(|n| n.parse::<i64>().ok()).map(|kb| kb.div_euclid(1024));
        }
    }
    None
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

/// `facts._user` (ansible-core's UserFactCollector): the login name as `getpass.getuser()`
/// finds it (LOGNAME, USER, LNAME, USERNAME, else the uid's entry) and its password entry.
fn user_facts() -> Vec<(&'static str, Value)> {
    let uid = sys::uid();
    let name = ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .or_else(|| sys::user_entry(uid).map(|pw| pw.name))
        .unwrap_or_else(|| uid.to_string());
    let entry = sys::user_entry_named(&name).or_else(|| sys::user_entry(uid));
    let mut out = vec![("user_id", Value::from(name))];
    match entry {
        Some(pw) => out.extend([
            ("user_uid", Value::Int(pw.uid as i64)),
            ("user_gid", Value::Int(pw.gid as i64)),
            ("user_gecos", Value::from(pw.gecos)),
            ("user_dir", Value::from(pw.dir)),
            ("user_shell", Value::from(pw.shell)),
        ]),
        None => out.extend([
            ("user_uid", Value::Int(uid as i64)),
            ("user_gid", Value::Int(sys::gid() as i64)),
            ("user_gecos", Value::from("")),
            ("user_dir", Value::from(std::env::var("HOME").unwrap_or_default())),
            ("user_shell", Value::from("")),
        ]),
    }
    out
}

/// Ansible's fips fact: the kernel's FIPS mode switch reads `1`.
fn fips() -> bool {
    std::fs::read_to_string("/proc/sys/crypto/fips_enabled")
        .map(|text| text.trim() == "1")
        .unwrap_or(false)
}

/// `time.time_ns()`.
fn now_ns() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// `facts._date_time()` at `ns` nanoseconds since the epoch, with Python's float arithmetic:
/// `time.time()` is the nanoseconds over 1e9 as a double, `time.localtime` floors it, the
/// microseconds are `int((now % 1) * 1e6)`; C's strftime formats, as Python's calls it.
fn date_time(ns: i128) -> Map {
    let now = if ns % 1_000_000_000 == 0 { (ns / 1_000_000_000) as f64 } else { ns as f64 / 1e9 };
    let secs = now.floor() as i64;
    let micro = format!("{:06}", ((now.rem_euclid(1.0)) * 1e6) as i64);
    let (lt, ut) = match (sys::localtime(secs), sys::gmtime(secs)) {
        (Some(lt), Some(ut)) => (lt, ut),
        _ => return Map::new(),
    };
    let local = |fmt: &str| Value::from(sys::strftime(fmt, &lt));
    let epoch = (now.trunc() as i64).to_string();
    let mut out = Map::new();
    for (key, fmt) in [
        ("year", "%Y"),
        ("month", "%m"),
        ("weekday", "%A"),
        ("weekday_number", "%w"),
        ("weeknumber", "%W"),
        ("day", "%d"),
        ("hour", "%H"),
        ("minute", "%M"),
        ("second", "%S"),
    ] {
        out.insert(key, local(fmt));
    }
    out.insert("epoch", Value::from(epoch.as_str()));
    out.insert("epoch_int", Value::from(epoch.as_str()));
    out.insert("date", local("%Y-%m-%d"));
    out.insert("time", local("%H:%M:%S"));
    out.insert(
        "iso8601_micro",
        Value::from(format!("{}.{}Z", sys::strftime("%Y-%m-%dT%H:%M:%S", &ut), micro)),
    );
    out.insert("iso8601", Value::from(sys::strftime("%Y-%m-%dT%H:%M:%SZ", &ut)));
    out.insert(
        "iso8601_basic",
        Value::from(format!("{}{}", sys::strftime("%Y%m%dT%H%M%S", &lt), micro)),
    );
    out.insert("iso8601_basic_short", local("%Y%m%dT%H%M%S"));
    out.insert("tz", local("%Z"));
    out.insert("tz_dst", Value::from(sys::tzname(secs).1));
    out.insert("tz_offset", local("%z"));
    out
}

/// The facts, every name prefixed with `ansible_` (in the order of `facts.gather()`).
pub fn gather() -> Map {
    let [system, nodename, release, version, machine] = sys::uname_fields();
    let pkg_mgr = PKG_MGRS
        .iter()
        .find(|(path, _)| Path::new(path).exists())
        .map_or("unknown", |(_, name)| *name);
    let mut facts: Vec<(&str, Value)> = vec![
        ("system", Value::from(system.as_str())),
        ("kernel", Value::from(release.as_str())),
        ("kernel_version", Value::from(version)),
        ("machine", Value::from(machine.as_str())),
    ];
    let fqdn = sys::fqdn();
    let domain = fqdn.splitn(2, '.').nth(1).unwrap_or("").to_string();
    let bits = (std::mem::size_of::<usize>() * 8).to_string();
    facts.extend([
        ("fqdn", Value::from(fqdn.as_str())),
        ("hostname", Value::from(nodename.split('.').next().unwrap_or(""))),
        ("nodename", Value::from(nodename.as_str())),
        ("domain", Value::from(domain)),
        ("userspace_bits", Value::from(bits.as_str())),
        ("architecture", Value::from(machine.as_str())),
    ]);
    if machine == "x86_64" {
        // the runner's own pointer width, as facts.py reports its interpreter's
        facts.push(("userspace_architecture", Value::from(if bits == "64" { "x86_64" } else { "i386" })));
    }
    // facts._platform: dbus's copy first, its first line
    if let Some(id) = content("/var/lib/dbus/machine-id").or_else(|| content("/etc/machine-id")) {
        facts.push(("machine_id", Value::from(id.lines().next().unwrap_or(""))));
    }
    let mut minor = String::new();
    for (key, value) in distribution_facts(&system, &release) {
        if key == "distribution_version" {
            minor = value.split('.').nth(1).unwrap_or("").to_string();
        }
        facts.push((key, Value::from(value)));
    }
    facts.push(("distribution_minor_version", Value::from(minor.as_str())));
    facts.push(("date_time", Value::Dict(date_time(now_ns()))));
    facts.push(("env", Value::Dict(environment())));
    facts.push(("fips", Value::Bool(fips())));
    facts.push(("pkg_mgr", Value::from(pkg_mgr)));
    facts.push(("service_mgr", Value::from(service_mgr(&system))));
    facts.extend(user_facts());
    let (count, vcpus, nproc) = cpu_facts(&machine);
    facts.push(("processor_count", Value::Int(count)));
    facts.push(("processor_vcpus", Value::Int(vcpus)));
    facts.push(("processor_nproc", Value::Int(nproc)));
    facts.push(("memtotal_mb", memtotal_mb()));
    if let Some(mb) = meminfo_mb("SwapTotal:") {
        facts.push(("swaptotal_mb", Value::Int(mb)));
    }
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
        // the facts the runner gathers are some of the runtime's, in the same order
        let expected: Vec<&str> = theirs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| ours.contains_key(k))
            .collect();
        assert_eq!(ours.len(), expected.len(), "every fact the runner gathers is one of the runtime's");
        let keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, expected, "the same keys in the same order");
        for (key, value) in ours.iter() {
            if key == "ansible_date_time" {
                // the two runs' times differ: the same keys here, values in date_time_matches_python
                let keys = |v: &Value| v.as_dict().unwrap().iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
                assert_eq!(keys(value), keys(theirs.get(key).unwrap()));
                continue;
            }
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
    fn date_time_matches_python() {
        let mut env = Map::new();
        if let Ok(tz) = std::env::var("TZ") {
            env.insert("TZ", Value::from(tz));
        }
        // whole seconds, fractions a double rounds, the end of a year, a leap day, before 1970
        let samples: [i128; 6] = [
            1_765_000_000_000_000_000,
            1_765_104_567_123_456_789,
            1_767_225_599_999_999_999,
            1_709_208_000_000_001_000,
            951_782_400_500_000_000,
            -86_399_250_000_000,
        ];
        for ns in samples.iter() {
            let code = format!(
                "import time\nns = {}\nnow = float(ns // 10**9) if ns % 10**9 == 0 else ns / 1e9\n\
                 time.time = lambda: now\nimport rustle_runtime.facts as f\nprint(json.dumps(f._date_time()))",
                ns
            );
            let theirs = match python(&code, &env) {
                Some(v) => v,
                None => return,
            };
            assert_eq!(to_string(&Value::Dict(date_time(*ns))), to_string(&theirs), "at {} ns", ns);
        }
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
    fn cpu_rules_match_python() {
        let intel = |sockets: usize, cores: usize, threads: usize| {
            let mut text = String::new();
            let mut n = 0;
            for socket in 0..sockets {
                for core in 0..cores {
                    for _ in 0..threads {
                        text += &format!(
                            "processor\t: {}\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\n\
                             physical id\t: {}\nsiblings\t: {}\ncore id\t\t: {}\ncpu cores\t: {}\n\
                             flags\t\t: fpu vme\n\n",
                            n, socket, cores * threads, core, cores
                        );
                        n += 1;
                    }
                }
            }
            text
        };
        let arm = "processor\t: 0\nBogoMIPS\t: 50\n\nprocessor\t: 1\nBogoMIPS\t: 50\n".to_string();
        let samples = [
            (intel(1, 2, 1), "x86_64", false),
            (intel(2, 4, 2), "x86_64", false),
            (intel(1, 1, 1), "x86_64", true),
            (intel(1, 2, 2).replace(" vme", ""), "x86_64", true),
            ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: EPYC\n".repeat(3), "x86_64", false),
            (arm, "aarch64", false),
            (String::new(), "x86_64", false),
        ];
        for (text, arch, xen) in samples.iter() {
            let code = format!(
                "import rustle_runtime.facts as f\nout = f.cpu_facts({:?}, {:?}, {})\n\
                 print(json.dumps([out['processor_count'], out['processor_vcpus'], out['processor_nproc']]))",
                text,
                arch,
                if *xen { "True" } else { "False" }
            );
            let theirs = match python(&code, &Map::new()) {
                Some(v) => v,
                None => return,
            };
            let (count, vcpus, nproc) = cpu_counts(text, arch, *xen);
            assert_eq!(format!("[{}, {}, {}]", count, vcpus, nproc), to_string(&theirs), "{:?}", text);
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
