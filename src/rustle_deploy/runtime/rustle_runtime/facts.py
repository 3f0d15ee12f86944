"""Gather the host facts the runtime knows (a subset of Ansible's ``setup``), cheaply.

``gather()`` returns the facts with their ``ansible_`` prefix; the executor gathers them once,
only when an expression or module asks, and exposes them both prefixed and, without the prefix,
under ``ansible_facts``, as Ansible does.
"""

import os
import socket
import sys
import time

_DISTRIBUTIONS = {
    "ubuntu": ("Ubuntu", "Debian"),
    "debian": ("Debian", "Debian"),
    "raspbian": ("Debian", "Debian"),
    "linuxmint": ("Linux Mint", "Debian"),
    "pop": ("Pop!_OS", "Debian"),
    "kali": ("Kali", "Debian"),
    "centos": ("CentOS", "RedHat"),
    "rhel": ("RedHat", "RedHat"),
    "fedora": ("Fedora", "RedHat"),
    "rocky": ("Rocky", "RedHat"),
    "almalinux": ("AlmaLinux", "RedHat"),
    "ol": ("OracleLinux", "RedHat"),
    "amzn": ("Amazon", "RedHat"),
    "alpine": ("Alpine", "Alpine"),
    "arch": ("Archlinux", "Archlinux"),
    "manjaro": ("Archlinux", "Archlinux"),
    "opensuse-leap": ("openSUSE Leap", "Suse"),
    "opensuse-tumbleweed": ("openSUSE Tumbleweed", "Suse"),
    "sles": ("SLES", "Suse"),
    "gentoo": ("Gentoo", "Gentoo"),
    "freebsd": ("FreeBSD", "FreeBSD"),
}

_PKG_MGRS = (
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/dnf", "dnf"),
    ("/usr/bin/yum", "yum"),
    ("/sbin/apk", "apk"),
    ("/usr/bin/zypper", "zypper"),
    ("/usr/bin/pacman", "pacman"),
    ("/usr/sbin/pkg", "pkgng"),
    ("/usr/local/bin/brew", "homebrew"),
    ("/opt/homebrew/bin/brew", "homebrew"),
)


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _os_release():
    text = _read("/etc/os-release") or _read("/usr/lib/os-release") or ""
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _distribution(system):
    if system != "Linux":
        release = os.uname().release
        return {"distribution": system, "os_family": system, "distribution_version": release,
                "distribution_major_version": release.split(".")[0], "distribution_release": release}
    rel = _os_release()
    dist_id = rel.get("ID", "").lower()
    name, family = _DISTRIBUTIONS.get(dist_id, (None, None))
    if name is None:
        for like in rel.get("ID_LIKE", "").lower().split():
            if like in _DISTRIBUTIONS:
                family = _DISTRIBUTIONS[like][1]
                break
        name = rel.get("NAME", "Linux").split()[0] if rel else "Linux"
        family = family or name
    version = rel.get("VERSION_ID", "")
    if dist_id == "debian":
        deb = (_read("/etc/debian_version") or "").strip()
        if deb[:1].isdigit():
            version = deb
    release = rel.get("VERSION_CODENAME", "") or rel.get("UBUNTU_CODENAME", "")
    if not release and "(" in rel.get("VERSION", ""):
        release = rel["VERSION"].split("(", 1)[1].split(")", 1)[0].split()[0].lower()
    return {
        "distribution": name,
        "os_family": family,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0] if version else "",
        "distribution_release": release,
    }


def _service_mgr():
    comm = (_read("/proc/1/comm") or "").strip()
    if comm == "systemd" or os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.exists("/sbin/openrc-run") or os.path.isdir("/run/openrc"):
        return "openrc"
    if sys.platform == "darwin":
        return "launchd"
    if os.path.exists("/sbin/initctl") and os.path.isdir("/etc/init"):
        return "upstart"
    return comm or "service"


def _default_ipv4():
    text = _read("/proc/net/route") or ""
    iface = gateway = None
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 2 and parts[1] == "00000000":
            iface = parts[0]
            gw = int(parts[2], 16)
            gateway = socket.inet_ntoa(gw.to_bytes(4, "little"))
            break
    if iface is None:
        return {}
    out = {"interface": iface, "gateway": gateway, "alias": iface}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect((gateway if gateway != "0.0.0.0" else "192.0.2.1", 9))  # no packet is sent
        out["address"] = sock.getsockname()[0]
    except OSError:
        pass
    finally:
        sock.close()
    mac = (_read(f"/sys/class/net/{iface}/address") or "").strip()
    if mac:
        out["macaddress"] = mac
    return out


def _memtotal_mb():
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return None


def _date_time():
    now = time.time()
    lt = time.localtime(now)
    ut = time.gmtime(now)
    return {
        "year": time.strftime("%Y", lt), "month": time.strftime("%m", lt),
        "weekday": time.strftime("%A", lt), "weekday_number": time.strftime("%w", lt),
        "weeknumber": time.strftime("%W", lt), "day": time.strftime("%d", lt),
        "hour": time.strftime("%H", lt), "minute": time.strftime("%M", lt),
        "second": time.strftime("%S", lt), "epoch": str(int(now)),
        "epoch_int": str(int(now)),
        "date": time.strftime("%Y-%m-%d", lt), "time": time.strftime("%H:%M:%S", lt),
        "iso8601_micro": time.strftime("%Y-%m-%dT%H:%M:%S", ut) + f".{int((now % 1) * 1e6):06d}Z",
        "iso8601": time.strftime("%Y-%m-%dT%H:%M:%SZ", ut),
        "iso8601_basic": time.strftime("%Y%m%dT%H%M%S", lt) + f"{int((now % 1) * 1e6):06d}",
        "iso8601_basic_short": time.strftime("%Y%m%dT%H%M%S", lt),
        "tz": time.strftime("%Z", lt), "tz_dst": time.tzname[1] if len(time.tzname) > 1 else "",
        "tz_offset": time.strftime("%z", lt),
    }


def _user():
    import pwd

    uid = os.getuid()
    try:
        pw = pwd.getpwuid(uid)
        return {"user_id": pw.pw_name, "user_uid": uid, "user_gid": os.getgid(),
                "user_dir": pw.pw_dir, "user_shell": pw.pw_shell, "user_gecos": pw.pw_gecos}
    except KeyError:
        return {"user_id": str(uid), "user_uid": uid, "user_gid": os.getgid(),
                "user_dir": os.environ.get("HOME", ""), "user_shell": "", "user_gecos": ""}


def _fips():
    """Ansible's fips fact: the kernel's FIPS mode switch reads ``1``."""
    try:
        with open("/proc/sys/crypto/fips_enabled") as handle:
            return handle.read().strip() == "1"
    except OSError:
        return False


def gather():
    """Return the facts, every name prefixed with ``ansible_``."""
    uname = os.uname()
    system = uname.sysname
    machine = uname.machine
    hostname = socket.gethostname()
    try:
        fqdn = socket.getfqdn()
    except OSError:
        fqdn = hostname
    try:
        nproc = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        nproc = os.cpu_count() or 1
    vi = sys.version_info
    facts = {
        "system": system,
        "kernel": uname.release,
        "kernel_version": uname.version,
        "machine": machine,
        "architecture": machine,
        "hostname": hostname.split(".")[0],
        "nodename": uname.nodename,
        "fqdn": fqdn,
        "domain": fqdn.split(".", 1)[1] if "." in fqdn else "",
        "pkg_mgr": next((name for path, name in _PKG_MGRS if os.path.exists(path)), "unknown"),
        "service_mgr": _service_mgr(),
        "env": dict(os.environ),
        "python_version": f"{vi[0]}.{vi[1]}.{vi[2]}",
        "python": {
            "executable": sys.executable,
            "version": {"major": vi[0], "minor": vi[1], "micro": vi[2],
                        "releaselevel": vi[3], "serial": vi[4]},
            "version_info": list(vi),
            "type": sys.implementation.name.capitalize() if sys.implementation.name != "cpython" else "CPython",
        },
        "processor_vcpus": os.cpu_count() or 1,
        "processor_nproc": nproc,
        "processor_count": os.cpu_count() or 1,
        "memtotal_mb": _memtotal_mb(),
        "date_time": _date_time(),
        "default_ipv4": _default_ipv4(),
        "fips": _fips(),
    }
    facts.update(_distribution(system))
    facts.update(_user())
    return {"ansible_" + k: v for k, v in facts.items()}


def unprefixed(facts):
    """``ansible_facts`` as Ansible exposes it: the same facts without the prefix."""
    return {k[8:] if k.startswith("ansible_") else k: v for k, v in facts.items()}
