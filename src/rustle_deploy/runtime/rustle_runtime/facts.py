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


_SELINUX_MODES = {1: "enforcing", 0: "permissive", -1: "disabled"}


def _selinux():
    """``selinux`` and ``selinux_python_present`` as ansible-core's SelinuxFactCollector gives
    them, through libselinux with ctypes as its ``compat.selinux`` does (no library: Ansible's
    "Missing selinux Python library")."""
    import ctypes

    try:
        lib = ctypes.CDLL("libselinux.so.1", use_errno=True)
    except OSError:
        return {"selinux": {"status": "Missing selinux Python library"}, "selinux_python_present": False}
    if not lib.is_selinux_enabled():
        return {"selinux_python_present": True, "selinux": {"status": "disabled"}}
    facts = {"status": "enabled"}

    def call(fn, *args):
        try:
            return getattr(lib, fn)(*args)
        except (AttributeError, OSError):
            return None

    policyvers = call("security_policyvers")
    facts["policyvers"] = policyvers if isinstance(policyvers, int) and policyvers >= 0 else "unknown"
    mode = ctypes.c_int()
    rc = call("selinux_getenforcemode", ctypes.byref(mode))
    facts["config_mode"] = _SELINUX_MODES.get(mode.value, "unknown") if rc == 0 else "unknown"
    enforce = call("security_getenforce")
    facts["mode"] = _SELINUX_MODES.get(enforce, "unknown")
    policy = ctypes.c_char_p()
    rc = call("selinux_getpolicytype", ctypes.byref(policy))
    facts["type"] = policy.value.decode("utf-8", "replace") if rc == 0 and policy.value else "unknown"
    return {"selinux_python_present": True, "selinux": facts}


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
    facts.update(_selinux())
    return {"ansible_" + k: v for k, v in facts.items()}


# gather_subset as ansible-core's setup reads it (module_utils/facts/collector.py): the names it
# accepts, the minimal set every gathering includes unless "!min", and which collector gives
# each fact this runtime gathers (a collector needing others, as hardware and network need
# platform, brings their facts too). Collectors with no fact here (apparmor, dns, lsb, ...)
# select nothing.
VALID_SUBSETS = frozenset((
    "all_ipv4_addresses", "all_ipv6_addresses", "apparmor", "architecture", "caps", "chroot", "cmdline",
    "date_time", "default_ipv4", "default_ipv6", "devices", "distribution", "distribution_major_version",
    "distribution_release", "distribution_version", "dns", "effective_group_ids", "effective_user_id", "env",
    "facter", "fibre_channel_wwn", "fips", "hardware", "interfaces", "is_chroot", "iscsi", "kernel",
    "kernel_version", "loadavg", "local", "lsb", "machine", "machine_id", "mounts", "network", "nvme", "ohai",
    "os_family", "pkg_mgr", "platform", "processor", "processor_cores", "processor_count", "python",
    "python_version", "real_user_id", "selinux", "service_mgr", "ssh_host_key_dsa_public",
    "ssh_host_key_ecdsa_public", "ssh_host_key_ed25519_public", "ssh_host_key_rsa_public", "ssh_host_pub_keys",
    "ssh_pub_keys", "system", "system_capabilities", "system_capabilities_enforced", "systemd", "user",
    "user_dir", "user_gecos", "user_gid", "user_id", "user_shell", "user_uid", "virtual", "virtualization_role",
    "virtualization_tech_guest", "virtualization_tech_host", "virtualization_type"))
MINIMAL_SUBSET = frozenset(("apparmor", "caps", "cmdline", "date_time", "distribution", "dns", "env", "fips",
                            "local", "lsb", "pkg_mgr", "platform", "python", "selinux", "service_mgr",
                            "ssh_pub_keys", "user"))
_PLATFORM = ("system", "kernel", "kernel_version", "machine", "architecture", "python_version", "hostname",
             "nodename", "fqdn", "domain")
_COLLECTOR_OF = dict(
    [(k, "platform") for k in _PLATFORM]
    + [(k, "hardware") for k in ("processor_vcpus", "processor_nproc", "processor_count", "memtotal_mb")]
    + [("default_ipv4", "network"), ("python", "python"), ("env", "env"), ("pkg_mgr", "pkg_mgr"),
       ("service_mgr", "service_mgr"), ("date_time", "date_time"), ("fips", "fips"), ("local", "local"),
       ("selinux", "selinux"), ("selinux_python_present", "selinux"), ("os_family", "distribution")])
_REQUIRES = {"hardware": ("platform",), "network": ("platform", "distribution")}
# a fine-grained name selects the collector that gives it
_FACT_ID_COLLECTOR = dict(
    [(k, "platform") for k in ("architecture", "kernel", "kernel_version", "machine", "machine_id",
                               "python_version", "system")]
    + [(k, "distribution") for k in ("distribution_major_version", "distribution_release",
                                     "distribution_version", "os_family")]
    + [(k, "user") for k in ("effective_group_ids", "effective_user_id", "real_user_id", "user_dir",
                             "user_gecos", "user_gid", "user_id", "user_shell", "user_uid")]
    + [(k, "hardware") for k in ("devices", "mounts", "processor", "processor_cores", "processor_count")]
    + [(k, "network") for k in ("all_ipv4_addresses", "all_ipv6_addresses", "default_ipv4", "default_ipv6",
                                "interfaces")])


def collectors(gather_subset):
    """The collectors ``gather_subset`` selects, by ansible-core's rules; ValueError with its
    message for a name it does not know."""
    additional, exclude, explicit = set(), set(), set()
    for subset in ["min"] + list(gather_subset or ["all"]):
        subset = str(subset)
        if subset == "min":
            additional.update(MINIMAL_SUBSET)
            continue
        if subset == "all":
            additional.update(VALID_SUBSETS)
            continue
        if subset.startswith("!"):
            name = subset[1:]
            if name == "min":
                exclude.update(MINIMAL_SUBSET)
            elif name == "all":
                exclude.update(VALID_SUBSETS - MINIMAL_SUBSET)
            else:  # an unknown exclusion is ignored, as in Ansible
                exclude.add(name)
            continue
        if subset not in VALID_SUBSETS:
            raise ValueError(f"Bad subset '{subset}' given to Ansible. gather_subset options allowed: all, "
                             + ", ".join(sorted(VALID_SUBSETS)))
        explicit.add(subset)
        additional.add(subset)
    if not additional:
        additional.update(VALID_SUBSETS)
    additional.difference_update(exclude - explicit)
    chosen = {_FACT_ID_COLLECTOR.get(name, name) for name in additional}
    for name in list(chosen):
        chosen.update(_REQUIRES.get(name, ()))
    return chosen


def select(facts, chosen):
    """The gathered ``facts`` (``ansible_`` names) that the ``chosen`` collectors give."""
    out = {}
    for key, value in facts.items():
        name = key[8:] if key.startswith("ansible_") else key
        collector = _COLLECTOR_OF.get(name)
        if collector is None:
            if name.startswith("distribution"):
                collector = "distribution"
            elif name.startswith("user_") or name in ("real_user_id", "effective_user_id", "real_group_id",
                                                      "effective_group_id"):
                collector = "user"
        if collector is None or collector in chosen:  # a fact of no known collector: always
            out[key] = value
    return out


def unprefixed(facts):
    """``ansible_facts`` as Ansible exposes it: the same facts without the prefix (but
    ``ansible_local``, which keeps it there too)."""
    return {k[8:] if k.startswith("ansible_") and k != "ansible_local" else k: v for k, v in facts.items()}


# ansible-core's default fact_path (a play's fact_path keyword, or setup's, says another)
FACT_PATH = "/etc/ansible/facts.d"


class FactsContext:
    """What :func:`local_facts` needs of a module context, for facts gathered lazily (no task):
    executables run directly, warnings are kept."""

    def __init__(self):
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(str(msg))

    def run_command(self, args, expand=True):
        import subprocess

        proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        return (proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
                proc.stderr.decode("utf-8", "surrogateescape"))


def local_facts(ctx, fact_path):
    """Ansible's local facts (``ansible_local``): each ``*.fact`` of ``fact_path``, run when
    executable, read as JSON or else INI; a bad one is its error message (and a warning).
    ``ctx``: what runs the executable ones and takes the warnings (a module context, or
    :class:`FactsContext` for lazily gathered facts)."""
    import configparser
    import glob
    import json
    import stat

    local = {}
    if not os.path.exists(fact_path):
        return local
    for fn in sorted(glob.glob(fact_path + "/*.fact")):
        base = os.path.basename(fn).replace(".fact", "")
        try:
            executable = stat.S_IXUSR & os.stat(fn).st_mode
        except OSError as exc:
            local[base] = f"Could not stat fact ({fn}): {exc}"
            ctx.warn(local[base])
            continue
        if executable:
            try:
                rc, out, err = ctx.run_command([fn], expand=False)
                failed = None if rc == 0 else f"Failure executing fact script ({fn}), rc: {rc}, err: {err}"
            except OSError as exc:
                failed = f"Could not execute fact script ({fn}): {exc}"
            if failed is not None:
                local[base] = failed
                ctx.warn(failed)
                continue
        else:
            try:
                with open(fn, "rb") as fh:
                    out = fh.read().decode("utf-8", "surrogateescape").strip()  # get_file_content
            except OSError:
                out = ""
        try:
            fact = json.loads(out)
        except ValueError:
            parser = configparser.ConfigParser()
            try:
                parser.read_string(out)
            except configparser.Error:
                fact = f"error loading facts as JSON or ini - please check content: {fn}"
                ctx.warn(fact)
            else:
                fact = {}
                for section in parser.sections():
                    fact.setdefault(section, {})
                    for option in parser.options(section):
                        try:
                            fact[section][option] = parser.get(section, option)
                        except configparser.Error as exc:
                            fact = f"error loading facts as ini - please check content: {fn} ({exc})"
                            ctx.warn(fact)
                            break
                    if isinstance(fact, str):
                        break
        local[base] = fact
    return local
