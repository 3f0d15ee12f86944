//! Thin safe wrappers over the few libc calls the standard library lacks.
//!
//! Declared by hand (no crates): flock, setpgid, setsid, signal, kill, getpid, geteuid, dup/dup2, umask, uname,
//! localtime/gmtime/strftime, getaddrinfo/gethostbyaddr (getfqdn),
//! the reentrant passwd/group lookups, lchown, access and pipe. `struct passwd` is declared for
//! glibc/musl and macOS; of `struct group` only the leading fields, the same on both, are read.

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;

/// Set once the deploy agent ends the run from outside (agent.rs `RunGuard`): the run starts
/// no more processes and writes no more events; a thread about to do either parks instead,
/// and the agent's watcher ends the process.
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn stop() {
    STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Park this thread for good if the run is being ended (see `STOPPING`).
pub fn park_if_stopping() {
    while STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::park();
    }
}

const LOCK_EX: c_int = 2;
const LOCK_NB: c_int = 4;

#[cfg(target_os = "linux")]
const UTS_FIELD: usize = 65;
#[cfg(not(target_os = "linux"))]
const UTS_FIELD: usize = 256;

#[repr(C)]
struct Passwd {
    pw_name: *mut c_char,
    pw_passwd: *mut c_char,
    pw_uid: u32,
    pw_gid: u32,
    #[cfg(not(target_os = "linux"))]
    pw_change: i64,
    #[cfg(not(target_os = "linux"))]
    pw_class: *mut c_char,
    pw_gecos: *mut c_char,
    pw_dir: *mut c_char,
    pw_shell: *mut c_char,
    _rest: [usize; 4],
}

#[repr(C)]
struct Group {
    gr_name: *mut c_char,
    gr_passwd: *mut c_char,
    gr_gid: u32,
    _rest: [usize; 4],
}

/// `struct tm`; the same leading fields on glibc, musl and macOS.
#[repr(C)]
pub struct Tm {
    pub tm_sec: c_int,
    pub tm_min: c_int,
    pub tm_hour: c_int,
    pub tm_mday: c_int,
    pub tm_mon: c_int,
    pub tm_year: c_int,
    pub tm_wday: c_int,
    pub tm_yday: c_int,
    pub tm_isdst: c_int,
    pub tm_gmtoff: std::os::raw::c_long,
    pub tm_zone: *const c_char,
    // room for fields some libcs add
    _rest: [usize; 2],
}

impl Tm {
    fn zeroed() -> Tm {
        Tm {
            tm_sec: 0,
            tm_min: 0,
            tm_hour: 0,
            tm_mday: 0,
            tm_mon: 0,
            tm_year: 0,
            tm_wday: 0,
            tm_yday: 0,
            tm_isdst: 0,
            tm_gmtoff: 0,
            tm_zone: std::ptr::null(),
            _rest: [0; 2],
        }
    }
}

extern "C" {
    fn localtime_r(time: *const i64, out: *mut Tm) -> *mut Tm;
    fn gmtime_r(time: *const i64, out: *mut Tm) -> *mut Tm;
    #[link_name = "strftime"]
    fn c_strftime(buf: *mut c_char, max: usize, format: *const c_char, tm: *const Tm) -> usize;
    #[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const AddrInfo, res: *mut *mut AddrInfo)
        -> c_int;
    #[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
    fn freeaddrinfo(res: *mut AddrInfo);
    #[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
    fn gethostbyaddr_r(
        addr: *const c_void,
        len: u32,
        family: c_int,
        ret: *mut HostEnt,
        buf: *mut c_char,
        buflen: usize,
        result: *mut *mut HostEnt,
        h_errnop: *mut c_int,
    ) -> c_int;
    fn flock(fd: c_int, operation: c_int) -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getpgrp() -> c_int;
    fn getuid() -> u32;
    fn geteuid() -> u32;
    fn getgid() -> u32;
    fn setsid() -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn gethostname(name: *mut c_char, len: usize) -> c_int;
    fn sysconf(name: c_int) -> std::os::raw::c_long;
    #[cfg(target_os = "linux")]
    fn sched_getaffinity(pid: c_int, size: usize, mask: *mut c_void) -> c_int;
    fn access(path: *const c_char, mode: c_int) -> c_int;
    fn pipe(fds: *mut c_int) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    #[link_name = "getpid"]
    fn c_getpid() -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    #[link_name = "umask"]
    fn c_umask(mask: u32) -> u32;
    #[link_name = "uname"]
    fn c_uname(buf: *mut c_void) -> c_int;
    #[link_name = "lchown"]
    fn c_lchown(path: *const c_char, uid: u32, gid: u32) -> c_int;
    fn getpwuid_r(uid: u32, pwd: *mut Passwd, buf: *mut c_char, len: usize, out: *mut *mut Passwd) -> c_int;
    fn getpwnam_r(
        name: *const c_char,
        pwd: *mut Passwd,
        buf: *mut c_char,
        len: usize,
        out: *mut *mut Passwd,
    ) -> c_int;
    fn getgrgid_r(gid: u32, grp: *mut Group, buf: *mut c_char, len: usize, out: *mut *mut Group) -> c_int;
    fn getgrnam_r(
        name: *const c_char,
        grp: *mut Group,
        buf: *mut c_char,
        len: usize,
        out: *mut *mut Group,
    ) -> c_int;
}

/// The message of an OS error without Rust's " (os error N)" suffix, like Python's `strerror`.
pub fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

fn check(rc: c_int) -> io::Result<c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `flock(fd, LOCK_EX | LOCK_NB)`; a held lock is an error of kind `WouldBlock`.
pub fn flock_exclusive_nb(fd: i32) -> io::Result<()> {
    loop {
        match check(unsafe { flock(fd, LOCK_EX | LOCK_NB) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(13) => {
                // EACCES: some systems report a held lock this way, as Python's agent allows.
                return Err(io::Error::new(io::ErrorKind::WouldBlock, e));
            }
            other => return other.map(|_| ()),
        }
    }
}

/// Make this process the leader of a new process group (`setpgid(0, 0)`).
pub fn setpgid_self() -> io::Result<()> {
    check(unsafe { setpgid(0, 0) }).map(|_| ())
}

/// Send `sig` to every process of group `pgid`; errors (no such group) are ignored.
pub fn kill_group(pgid: i32, sig: i32) {
    unsafe {
        kill(-pgid, sig);
    }
}

/// Send `sig` to process `pid`; errors are ignored.
pub fn kill_pid(pid: i32, sig: i32) {
    unsafe {
        kill(pid, sig);
    }
}

/// A new directory `PREFIX-<pid>-<nanos><attempt>` with `mode` (before the umask) under TMPDIR
/// (or /tmp); a name already taken is tried again, at most 100 times.
pub fn fresh_dir(prefix: &str, mode: u32) -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no unused name");
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("{}-{}-{:08x}{:02}", prefix, getpid(), nanos, attempt));
        match std::fs::DirBuilder::new().mode(mode).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

pub fn getpid() -> i32 {
    unsafe { c_getpid() }
}

/// `localtime_r`: the local broken-down time of `secs` since the epoch, or None where the
/// C library cannot represent it.
pub fn localtime(secs: i64) -> Option<Tm> {
    let mut tm = Tm::zeroed();
    // SAFETY: both pointers are valid for the call; localtime_r does not keep them.
    if unsafe { localtime_r(&secs, &mut tm) }.is_null() {
        None
    } else {
        Some(tm)
    }
}

/// `gmtime_r`: the UTC broken-down time of `secs` since the epoch.
pub fn gmtime(secs: i64) -> Option<Tm> {
    let mut tm = Tm::zeroed();
    // SAFETY: both pointers are valid for the call; gmtime_r does not keep them.
    if unsafe { gmtime_r(&secs, &mut tm) }.is_null() {
        None
    } else {
        Some(tm)
    }
}

/// `time.strftime(format, tm)`: the C library's strftime, as Python's calls it.
pub fn strftime(format: &str, tm: &Tm) -> String {
    let fmt = match CString::new(format) {
        Ok(f) => f,
        Err(_) => return String::new(),
    };
    let mut size = 256;
    loop {
        let mut buf = vec![0u8; size];
        // SAFETY: buf has `size` bytes; tm is a valid struct tm from localtime_r/gmtime_r.
        let n = unsafe { c_strftime(buf.as_mut_ptr() as *mut c_char, size, fmt.as_ptr(), tm) };
        if n > 0 || size >= 1 << 16 {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        size *= 4; // 0: too small (or an empty result, which a larger buffer gives again)
    }
}

/// The zone name of a broken-down local time (`tm_zone`).
fn zone_name(tm: &Tm) -> String {
    if tm.tm_zone.is_null() {
        return String::new();
    }
    // SAFETY: tm_zone points at a NUL-terminated name the C library keeps.
    unsafe { CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
}

/// `time.tzname` as CPython computes it (Modules/timemodule.c, init_timezone): the zone names
/// of the local time at the start of this year and half a year later, standard time first.
pub fn tzname(now: i64) -> (String, String) {
    const YEAR: i64 = (365 * 24 + 6) * 3600;
    let jan_t = now.div_euclid(YEAR) * YEAR;
    let (jan, jul) = match (localtime(jan_t), localtime(jan_t + YEAR / 2)) {
        (Some(a), Some(b)) => (a, b),
        _ => return (String::new(), String::new()),
    };
    let (jan_off, jul_off) = (-(jan.tm_gmtoff as i64), -(jul.tm_gmtoff as i64));
    if jan_off < jul_off {
        (zone_name(&jul), zone_name(&jan)) // DST is reversed in the southern hemisphere
    } else {
        (zone_name(&jan), zone_name(&jul))
    }
}

/// `struct addrinfo` (glibc and musl order: ai_addr before ai_canonname).
#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
#[repr(C)]
struct AddrInfo {
    ai_flags: c_int,
    ai_family: c_int,
    ai_socktype: c_int,
    ai_protocol: c_int,
    ai_addrlen: u32,
    ai_addr: *mut u8,
    ai_canonname: *mut c_char,
    ai_next: *mut AddrInfo,
}

#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
#[repr(C)]
struct HostEnt {
    h_name: *mut c_char,
    h_aliases: *mut *mut c_char,
    h_addrtype: c_int,
    h_length: c_int,
    h_addr_list: *mut *mut c_char,
}

#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
const AF_INET: c_int = 2;
#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
const AF_INET6: c_int = 10;

/// `socket.getfqdn()`: the host name's address (getaddrinfo, the first answer), the names the
/// resolver gives for that address (gethostbyaddr), the first of them with a dot; the host name
/// when a lookup fails or no name has a dot.
pub fn fqdn() -> String {
    let name = hostname();
    match lookup_names(&name) {
        Some(names) => names.iter().find(|n| n.contains('.')).unwrap_or(&names[0]).clone(),
        None => name,
    }
}

#[cfg(not(target_os = "linux"))]
fn lookup_names(_name: &str) -> Option<Vec<String>> {
    None // struct addrinfo is laid out otherwise there: the host name, as when a lookup fails
}

/// The static build (`+static`, for hosts whose C library is older than the build's) must not
/// load the host's NSS modules into itself: the same two lookups through the host's own C
/// library, `getent ahosts NAME` (getaddrinfo, its first address) and `getent hosts ADDRESS`
/// (gethostbyaddr: the name, then its aliases).
#[cfg(all(target_os = "linux", target_feature = "crt-static"))]
fn lookup_names(name: &str) -> Option<Vec<String>> {
    let getent = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("getent")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if out.status.success() {
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            None
        }
    };
    let addrs = getent(&["ahosts", name])?;
    let first = addrs.split_whitespace().next()?.to_string();
    let names = getent(&["hosts", &first])?;
    let fields: Vec<String> = names.lines().next()?.split_whitespace().skip(1).map(String::from).collect();
    if fields.is_empty() {
        None
    } else {
        Some(fields)
    }
}

/// gethostbyaddr's canonical name and aliases for `name`'s first address, as CPython's
/// `socket.gethostbyaddr(name)` finds them (setipaddr: getaddrinfo with AF_UNSPEC).
#[cfg(all(target_os = "linux", not(target_feature = "crt-static")))]
fn lookup_names(name: &str) -> Option<Vec<String>> {
    let node = CString::new(name).ok()?;
    let hints = AddrInfo {
        ai_flags: 0,
        ai_family: 0,
        ai_socktype: 0,
        ai_protocol: 0,
        ai_addrlen: 0,
        ai_addr: std::ptr::null_mut(),
        ai_canonname: std::ptr::null_mut(),
        ai_next: std::ptr::null_mut(),
    };
    let mut res: *mut AddrInfo = std::ptr::null_mut();
    // SAFETY: valid pointers; the result list is freed below.
    if unsafe { getaddrinfo(node.as_ptr(), std::ptr::null(), &hints, &mut res) } != 0 || res.is_null() {
        return None;
    }
    // the address inside the sockaddr: sin_addr at 4 (4 bytes), sin6_addr at 8 (16 bytes)
    let (family, addr) = unsafe {
        let ai = &*res;
        let raw = std::slice::from_raw_parts(ai.ai_addr, ai.ai_addrlen as usize);
        match ai.ai_family {
            AF_INET if raw.len() >= 8 => (AF_INET, raw[4..8].to_vec()),
            AF_INET6 if raw.len() >= 24 => (AF_INET6, raw[8..24].to_vec()),
            _ => (0, Vec::new()),
        }
    };
    unsafe { freeaddrinfo(res) };
    if family == 0 {
        return None;
    }
    let mut buf = vec![0u8; 16384];
    let mut ent = HostEnt {
        h_name: std::ptr::null_mut(),
        h_aliases: std::ptr::null_mut(),
        h_addrtype: 0,
        h_length: 0,
        h_addr_list: std::ptr::null_mut(),
    };
    let mut out: *mut HostEnt = std::ptr::null_mut();
    let mut herr: c_int = 0;
    // SAFETY: valid pointers and lengths; the strings live in buf, read before it is dropped.
    let rc = unsafe {
        gethostbyaddr_r(
            addr.as_ptr() as *const c_void,
            addr.len() as u32,
            family,
            &mut ent,
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            &mut out,
            &mut herr,
        )
    };
    if rc != 0 || out.is_null() || ent.h_name.is_null() {
        return None;
    }
    let mut names = vec![unsafe { CStr::from_ptr(ent.h_name) }.to_string_lossy().into_owned()];
    let mut alias = ent.h_aliases;
    while !alias.is_null() && !unsafe { *alias }.is_null() {
        names.push(unsafe { CStr::from_ptr(*alias) }.to_string_lossy().into_owned());
        alias = unsafe { alias.add(1) };
    }
    Some(names)
}

/// The local time as `time.strftime('%Y%m%dT%H%M%S')` writes it.
pub fn local_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let tm = localtime(secs).unwrap_or_else(Tm::zeroed);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The process group of this process.
pub fn process_group() -> i32 {
    unsafe { getpgrp() }
}

/// The real user id of this process.
pub fn uid() -> u32 {
    unsafe { getuid() }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    unsafe { geteuid() }
}

/// The real group id of this process.
pub fn gid() -> u32 {
    unsafe { getgid() }
}

/// Start `cmd`'s child in a new session (setsid) with SIGPIPE and SIGXFSZ at their defaults,
/// as Python's `subprocess` with `start_new_session=True` (`lowlevel.spawn`).
pub fn new_session(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    const SIGPIPE: c_int = 13;
    const SIGXFSZ: c_int = 25;
    const SIG_DFL: usize = 0;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            signal(SIGPIPE, SIG_DFL);
            signal(SIGXFSZ, SIG_DFL);
            Ok(())
        });
    }
}

/// `socket.gethostname()`.
pub fn hostname() -> String {
    let mut buf = vec![0u8; 1024];
    if unsafe { gethostname(buf.as_mut_ptr() as *mut c_char, buf.len() - 1) } < 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(target_os = "linux")]
const SC_NPROCESSORS_ONLN: c_int = 84;
#[cfg(target_os = "linux")]
const SC_PAGESIZE: c_int = 30;
#[cfg(target_os = "linux")]
const SC_PHYS_PAGES: c_int = 85;
#[cfg(not(target_os = "linux"))]
const SC_NPROCESSORS_ONLN: c_int = 58;
#[cfg(not(target_os = "linux"))]
const SC_PAGESIZE: c_int = 29;
#[cfg(not(target_os = "linux"))]
const SC_PHYS_PAGES: c_int = 200;

/// `os.cpu_count()`: the online processors, None when unknown.
pub fn cpu_count() -> Option<i64> {
    let n = unsafe { sysconf(SC_NPROCESSORS_ONLN) } as i64;
    if n >= 1 {
        Some(n)
    } else {
        None
    }
}

/// `os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")`.
pub fn physical_memory() -> i64 {
    let page = unsafe { sysconf(SC_PAGESIZE) } as i64;
    let pages = unsafe { sysconf(SC_PHYS_PAGES) } as i64;
    page.saturating_mul(pages)
}

/// `len(os.sched_getaffinity(0))`, None where the call is missing or fails.
#[cfg(target_os = "linux")]
pub fn affinity_count() -> Option<i64> {
    const EINVAL: i32 = 22;
    let mut words: usize = 16; // 1024 CPUs, grown as Python grows its mask
    loop {
        let mut mask = vec![0u64; words];
        let rc = unsafe { sched_getaffinity(0, words * 8, mask.as_mut_ptr() as *mut c_void) };
        if rc == 0 {
            return Some(mask.iter().map(|w| w.count_ones() as i64).sum());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(EINVAL) && words < (1 << 16) {
            words *= 2;
            continue;
        }
        return None;
    }
}

#[cfg(not(target_os = "linux"))]
pub fn affinity_count() -> Option<i64> {
    None
}

/// `os.access(path, W_OK | X_OK)`: may this process write into and enter `path`?
pub fn can_write_dir(path: &Path) -> bool {
    const W_OK_X_OK: c_int = 2 | 1;
    match c_path(path) {
        Ok(p) => unsafe { access(p.as_ptr(), W_OK_X_OK) == 0 },
        Err(_) => false,
    }
}

/// A pipe `(read end, write end)`, both close-on-exec.
pub fn pipe_pair() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::unix::io::FromRawFd;
    const F_SETFD: c_int = 2;
    const FD_CLOEXEC: c_int = 1;
    let mut fds = [0 as c_int; 2];
    check(unsafe { pipe(fds.as_mut_ptr()) })?;
    for fd in fds {
        unsafe {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    Ok(unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A new descriptor for the same open file as `fd`.
pub fn dup_fd(fd: i32) -> io::Result<i32> {
    check(unsafe { dup(fd) })
}

/// Make `new` refer to the open file of `old`.
pub fn dup2_fd(old: i32, new: i32) -> io::Result<()> {
    check(unsafe { dup2(old, new) }).map(|_| ())
}

/// Set the process umask, returning the previous one.
pub fn umask(mask: u32) -> u32 {
    unsafe { c_umask(mask) }
}

/// The five fields of `uname(2)`: sysname, nodename, release, version, machine.
pub fn uname_fields() -> [String; 5] {
    let mut buf = vec![0u8; UTS_FIELD * 6];
    if unsafe { c_uname(buf.as_mut_ptr() as *mut c_void) } < 0 {
        return Default::default();
    }
    let field = |i: usize| {
        let bytes = &buf[i * UTS_FIELD..(i + 1) * UTS_FIELD];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    [field(0), field(1), field(2), field(3), field(4)]
}

/// `(sysname, machine)` of `uname(2)`, e.g. `("Linux", "x86_64")`.
pub fn uname() -> (String, String) {
    let mut buf = vec![0u8; UTS_FIELD * 6];
    if unsafe { c_uname(buf.as_mut_ptr() as *mut c_void) } < 0 {
        return (String::new(), String::new());
    }
    let field = |i: usize| {
        let bytes = &buf[i * UTS_FIELD..(i + 1) * UTS_FIELD];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    (field(0), field(4))
}

/// Run a reentrant lookup with a growing buffer; `call` returns the C error number.
fn lookup<T>(mut call: impl FnMut(&mut T, &mut Vec<c_char>, &mut *mut T) -> c_int, empty: T) -> Option<T> {
    let mut entry = empty;
    let mut buf: Vec<c_char> = vec![0; 1024];
    loop {
        let mut out: *mut T = std::ptr::null_mut();
        let rc = call(&mut entry, &mut buf, &mut out);
        if rc == 34 && buf.len() < (1 << 20) {
            // ERANGE: the buffer was too small.
            let len = buf.len() * 4;
            buf = vec![0; len];
            continue;
        }
        if rc != 0 || out.is_null() {
            return None;
        }
        return Some(entry);
    }
}

fn empty_passwd() -> Passwd {
    Passwd {
        pw_name: std::ptr::null_mut(),
        pw_passwd: std::ptr::null_mut(),
        pw_uid: 0,
        pw_gid: 0,
        #[cfg(not(target_os = "linux"))]
        pw_change: 0,
        #[cfg(not(target_os = "linux"))]
        pw_class: std::ptr::null_mut(),
        pw_gecos: std::ptr::null_mut(),
        pw_dir: std::ptr::null_mut(),
        pw_shell: std::ptr::null_mut(),
        _rest: [0; 4],
    }
}

fn empty_group() -> Group {
    Group { gr_name: std::ptr::null_mut(), gr_passwd: std::ptr::null_mut(), gr_gid: 0, _rest: [0; 4] }
}

fn c_string(ptr: *const c_char) -> String {
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// The user name of `uid` (`pwd.getpwuid(uid).pw_name`), None when unknown.
pub fn user_name(uid: u32) -> Option<String> {
    let mut name = None;
    lookup(
        |pw, buf, out| {
            let rc = unsafe { getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), out) };
            if rc == 0 && !out.is_null() {
                name = Some(c_string(pw.pw_name));
            }
            rc
        },
        empty_passwd(),
    )?;
    name
}

/// The group name of `gid` (`grp.getgrgid(gid).gr_name`), None when unknown.
pub fn group_name(gid: u32) -> Option<String> {
    let mut name = None;
    lookup(
        |gr, buf, out| {
            let rc = unsafe { getgrgid_r(gid, gr, buf.as_mut_ptr(), buf.len(), out) };
            if rc == 0 && !out.is_null() {
                name = Some(c_string(gr.gr_name));
            }
            rc
        },
        empty_group(),
    )?;
    name
}

/// What `pwd.getpwuid(uid)` gives: name, home, shell and gecos; None when unknown.
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub dir: String,
    pub shell: String,
    pub gecos: String,
}

fn passwd_entry(pw: &Passwd) -> PasswdEntry {
    let text = |p: *const c_char| if p.is_null() { String::new() } else { c_string(p) };
    PasswdEntry {
        name: text(pw.pw_name),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        dir: text(pw.pw_dir),
        shell: text(pw.pw_shell),
        gecos: text(pw.pw_gecos),
    }
}

/// `pwd.getpwuid(uid)`, None when unknown.
pub fn user_entry(uid: u32) -> Option<PasswdEntry> {
    let mut entry = None;
    lookup(
        |pw, buf, out| {
            let rc = unsafe { getpwuid_r(uid, pw, buf.as_mut_ptr(), buf.len(), out) };
            if rc == 0 && !out.is_null() {
                entry = Some(passwd_entry(pw)); // while buf, which the strings point into, lives
            }
            rc
        },
        empty_passwd(),
    )?;
    entry
}

/// `pwd.getpwnam(name)`, None when unknown.
pub fn user_entry_named(name: &str) -> Option<PasswdEntry> {
    let name = CString::new(name).ok()?;
    let mut entry = None;
    lookup(
        |pw, buf, out| {
            let rc = unsafe { getpwnam_r(name.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), out) };
            if rc == 0 && !out.is_null() {
                entry = Some(passwd_entry(pw));
            }
            rc
        },
        empty_passwd(),
    )?;
    entry
}

/// The uid of user `name` (`pwd.getpwnam(name).pw_uid`), None when unknown.
pub fn user_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let pw = lookup(
        |pw, buf, out| unsafe { getpwnam_r(name.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), out) },
        empty_passwd(),
    )?;
    Some(pw.pw_uid)
}

/// The gid of group `name` (`grp.getgrnam(name).gr_gid`), None when unknown.
pub fn group_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let gr = lookup(
        |gr, buf, out| unsafe { getgrnam_r(name.as_ptr(), gr, buf.as_mut_ptr(), buf.len(), out) },
        empty_group(),
    )?;
    Some(gr.gr_gid)
}

/// The home directory of user `name` (`pwd.getpwnam(name).pw_dir`), None when unknown.
pub fn user_home(name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    let mut home = None;
    lookup(
        |pw, buf, out| {
            let rc = unsafe { getpwnam_r(name.as_ptr(), pw, buf.as_mut_ptr(), buf.len(), out) };
            if rc == 0 && !out.is_null() {
                home = Some(c_string(pw.pw_dir));
            }
            rc
        },
        empty_passwd(),
    )?;
    home
}

/// `os.lchown(path, uid, gid)` with None meaning "leave unchanged" (-1).
pub fn lchown(path: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let path = c_path(path)?;
    let rc = unsafe { c_lchown(path.as_ptr(), uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX)) };
    check(rc).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        crate::test_dir("sys", name)
    }

    #[test]
    fn flock_is_exclusive_between_open_files() {
        let dir = temp_dir("flock");
        let path = dir.join("lock");
        let a = std::fs::File::create(&path).unwrap();
        let b = std::fs::File::open(&path).unwrap();
        flock_exclusive_nb(a.as_raw_fd()).unwrap();
        let err = flock_exclusive_nb(b.as_raw_fd()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        flock_exclusive_nb(b.as_raw_fd()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uname_matches_the_uname_command() {
        let run = |flag: &str| {
            let out = std::process::Command::new("uname").arg(flag).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(uname(), (run("-s"), run("-m")));
    }

    #[test]
    fn user_and_group_lookups() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_id("root"), Some(0));
        assert_eq!(group_id(&group_name(0).unwrap()), Some(0));
        assert_eq!(user_id("no-such-user-rr"), None);
        assert_eq!(group_id("no-such-group-rr"), None);
        assert_eq!(user_name(4_000_000_000), None);
    }

    #[test]
    fn lchown_to_own_ids_and_umask_round_trip() {
        let dir = temp_dir("lchown");
        let path = dir.join("f");
        std::fs::write(&path, b"x").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        lchown(&path, Some(meta.uid()), None).unwrap();
        lchown(&path, None, Some(meta.gid())).unwrap();
        assert!(lchown(&dir.join("missing"), None, None).is_err());
        let old = umask(0o077);
        assert_eq!(umask(old), 0o077);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn getpid_matches_std() {
        assert_eq!(getpid() as u32, std::process::id());
    }

    #[test]
    fn local_timestamp_matches_date() {
        let out = std::process::Command::new("date").arg("+%Y%m%dT%H%M").output().unwrap();
        let want = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let got = local_timestamp();
        assert_eq!(got.len(), 15);
        assert!(got.starts_with(&want[..11]), "{} / {}", got, want);
    }

    #[test]
    fn home_access_and_pipe() {
        assert_eq!(user_home("root").as_deref(), Some("/root"));
        assert_eq!(user_home("no-such-user-rr"), None);
        let dir = temp_dir("access");
        assert!(can_write_dir(&dir));
        assert!(!can_write_dir(&dir.join("missing")));
        let (mut r, mut w) = pipe_pair().unwrap();
        use std::io::{Read, Write};
        w.write_all(b"hi").unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The C library the runner runs on, as the Python agent reports it (`"glibc 2.36"`): the
/// controller ships no runner that needs a newer glibc to this host. "" for another C library.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn libc_version() -> String {
    extern "C" {
        fn gnu_get_libc_version() -> *const c_char;
    }
    // SAFETY: glibc returns a pointer to a static NUL-terminated string
    let version = unsafe { CStr::from_ptr(gnu_get_libc_version()) };
    format!("glibc {}", version.to_string_lossy())
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn libc_version() -> String {
    String::new()
}
