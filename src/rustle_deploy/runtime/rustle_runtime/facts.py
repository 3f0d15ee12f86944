"""Gather the host facts the runtime knows (a subset of Ansible's ``setup``), cheaply.

``gather()`` returns the facts with their ``ansible_`` prefix; the executor gathers them once,
only when an expression or module asks, and exposes them both prefixed and, without the prefix,
under ``ansible_facts``, as Ansible does.
"""

import os
import re
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


# gather_timeout of the gathering under way: bounds each command a collector runs and each mount
# point's statvfs, as ansible-core's timeout does (setup's gather_timeout, 10 by default)
_TIMEOUT = [10]


def _content(path, default=None):
    """ansible-core's ``get_file_content``: the file's text stripped, ``default`` when it cannot
    be read or is empty."""
    text = _read(path)
    if text is None:
        return default
    text = text.strip()
    return text if text else default


def _bin(name):
    """The executable ``name`` on PATH or in the sbin directories (ansible-core's get_bin_path)."""
    import shutil

    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return shutil.which(name, path=os.pathsep.join(path + ["/sbin", "/usr/sbin", "/usr/local/sbin"]))


def _command(args):
    """(rc, stdout) of a command run under the C locale; (None, "") when it cannot start or
    outlives gather_timeout."""
    import subprocess

    env = dict(os.environ, LANG="C", LC_ALL="C", LC_MESSAGES="C")
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, timeout=_TIMEOUT[0], check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None, ""
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _platform(facts):
    import struct

    uname = os.uname()
    try:
        fqdn = socket.getfqdn()
    except OSError:
        fqdn = uname.nodename
    vi = sys.version_info
    out = {"system": uname.sysname, "kernel": uname.release, "kernel_version": uname.version,
           "machine": uname.machine, "python_version": f"{vi[0]}.{vi[1]}.{vi[2]}", "fqdn": fqdn,
           "hostname": uname.nodename.split(".")[0], "nodename": uname.nodename,
           "domain": ".".join(fqdn.split(".")[1:]), "userspace_bits": str(struct.calcsize("P") * 8),
           "architecture": uname.machine}
    if uname.machine == "x86_64":
        arch = {"64": "x86_64", "32": "i386"}.get(out["userspace_bits"])
        if arch:
            out["userspace_architecture"] = arch
    machine_id = _content("/var/lib/dbus/machine-id") or _content("/etc/machine-id")
    if machine_id:
        out["machine_id"] = machine_id.splitlines()[0]
    return out


def _service_mgr(facts):
    """ansible-core's ServiceMgrFactCollector: PID 1's name (mapped), else the system's rules."""
    proc_1 = _content("/proc/1/comm")
    if proc_1 is None and os.path.islink("/sbin/init"):
        proc_1 = os.readlink("/sbin/init")
    if proc_1 is not None:
        proc_1 = os.path.basename(proc_1).strip()
        if proc_1 == "init" or proc_1.endswith("sh"):
            proc_1 = None
    if proc_1:
        return {"service_mgr": {"procd": "openwrt_init", "runit-init": "runit", "svscan": "svc",
                                "openrc-init": "openrc"}.get(proc_1, proc_1)}
    system = facts.get("system") or os.uname().sysname
    name = None
    if sys.platform == "darwin":
        name = "launchd"
    elif "BSD" in system or system in ("Bitrig", "DragonFly"):
        name = "bsdinit"
    elif system == "Linux":
        systemctl = _bin("systemctl")
        if systemctl and any(os.path.exists(p) for p in ("/run/systemd/system/", "/dev/.run/systemd/",
                                                          "/dev/.systemd/")):
            name = "systemd"
        elif _bin("initctl") and os.path.exists("/etc/init/"):
            name = "upstart"
        elif os.path.exists("/sbin/openrc"):
            name = "openrc"
        elif systemctl and os.path.islink("/sbin/init") and os.path.basename(os.readlink("/sbin/init")) == "systemd":
            name = "systemd"
        elif os.path.exists("/etc/init.d/"):
            name = "sysvinit"
        elif os.path.exists("/etc/dinit.d/"):
            name = "dinit"
    return {"service_mgr": name or "service"}


def _memory():
    """memtotal/memfree/swaptotal/swapfree_mb and memory_mb, as ansible-core reads /proc/meminfo."""
    out, stats = {}, {}
    text = _read("/proc/meminfo")
    if text is None:
        try:
            out["memtotal_mb"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        except (ValueError, OSError, AttributeError):
            pass
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("MemTotal", "SwapTotal", "MemFree", "SwapFree", "Buffers", "Cached", "SwapCached"):
            mb = int(value.strip().split(" ")[0]) // 1024
            stats[key.lower()] = mb
            if key in ("MemTotal", "SwapTotal", "MemFree", "SwapFree"):
                out[key.lower() + "_mb"] = mb
    get = stats.get
    if None not in (get("memtotal"), get("memfree")):
        stats["real:used"] = stats["memtotal"] - stats["memfree"]
    if None not in (get("cached"), get("memfree"), get("buffers")):
        stats["nocache:free"] = stats["cached"] + stats["memfree"] + stats["buffers"]
    if None not in (get("memtotal"), get("nocache:free")):
        stats["nocache:used"] = stats["memtotal"] - stats["nocache:free"]
    if None not in (get("swaptotal"), get("swapfree")):
        stats["swap:used"] = stats["swaptotal"] - stats["swapfree"]
    out["memory_mb"] = {
        "real": {"total": get("memtotal"), "used": get("real:used"), "free": get("memfree")},
        "nocache": {"free": get("nocache:free"), "used": get("nocache:used")},
        "swap": {"total": get("swaptotal"), "free": get("swapfree"), "used": get("swap:used"),
                 "cached": get("swapcached")},
    }
    return out


def cpu_facts(cpuinfo, architecture, xen=False):
    """processor, processor_count/cores/threads_per_core/vcpus/nproc and flags from
    /proc/cpuinfo's text, by ansible-core's rules (sockets from ``physical id``, cores from
    ``cpu cores``, ...); ``processor_nproc`` is replaced by the affinity count by the caller."""
    out = {"processor": []}
    i = vendor = model = processors = zp = zmt = 0
    physid = coreid = 0
    sockets, cores = {}, {}
    xen_paravirt = False
    for line in cpuinfo.splitlines():
        data = line.split(":", 1)
        key = data[0].strip()
        val = data[1].strip() if len(data) > 1 else ""
        if xen and key == "flags" and "vme" not in val:
            xen_paravirt = True
        if key == "flags":
            out["flags"] = val.split()
        if key in ("model name", "Processor", "vendor_id", "cpu", "Vendor", "processor"):
            out["processor"].append(val)
            vendor += key == "vendor_id"
            model += key == "model name"
            processors += key == "processor"
            i += 1
        elif key == "physical id":
            physid = val
            sockets.setdefault(physid, 1)
        elif key == "core id":
            coreid = val
            if coreid not in sockets:
                cores[coreid] = 1
        elif key == "cpu cores":
            sockets[physid] = int(val)
        elif key == "siblings":
            cores[coreid] = int(val)
        elif key == "# processors":
            zp = int(val)
        elif key == "max thread id":
            zmt = int(val) + 1
        elif key == "ncpus active":
            i = int(val)
    if vendor > 0 and vendor == model:
        i = vendor
    if architecture.startswith(("armv", "aarch", "ppc")):
        i = processors
    if architecture == "s390x":
        out.update(processor_count=1, processor_cores=round(zp / zmt), processor_threads_per_core=zmt,
                   processor_vcpus=zp, processor_nproc=zp)
    elif xen_paravirt:
        out.update(processor_count=i, processor_cores=i, processor_threads_per_core=1, processor_vcpus=i,
                   processor_nproc=i)
    else:
        out["processor_count"] = len(sockets) if sockets else i
        first = list(sockets.values())[:1]
        out["processor_cores"] = first[0] if first and first[0] else 1
        per_core = list(cores.values())[:1]
        out["processor_threads_per_core"] = round((per_core[0] if per_core else 1) / out["processor_cores"])
        out["processor_vcpus"] = out["processor_threads_per_core"] * out["processor_count"] * out["processor_cores"]
        out["processor_nproc"] = processors
    return out


def _cpu(facts):
    text = _read("/proc/cpuinfo")
    if text is None:
        count = os.cpu_count() or 1
        out = {"processor_count": count, "processor_vcpus": count}
    else:
        xen = os.path.exists("/proc/xen") or (_read("/sys/hypervisor/type") or "").split("\n")[0].strip() == "xen"
        out = cpu_facts(text, facts.get("architecture") or os.uname().machine, xen)
    try:
        out["processor_nproc"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        out.setdefault("processor_nproc", os.cpu_count() or 1)
    return out


_FORM_FACTORS = (
    "Unknown", "Other", "Unknown", "Desktop", "Low Profile Desktop", "Pizza Box", "Mini Tower", "Tower", "Portable",
    "Laptop", "Notebook", "Hand Held", "Docking Station", "All In One", "Sub Notebook", "Space-saving",
    "Lunch Box", "Main Server Chassis", "Expansion Chassis", "Sub Chassis", "Bus Expansion Chassis",
    "Peripheral Chassis", "RAID Chassis", "Rack Mount Chassis", "Sealed-case PC", "Multi-system", "CompactPCI",
    "AdvancedTCA", "Blade", "Blade Enclosure", "Tablet", "Convertible", "Detachable", "IoT Gateway",
    "Embedded PC", "Mini PC", "Stick PC")
# DMI fact -> (file under /sys/devices/virtual/dmi/id, dmidecode keyword)
_DMI = (("bios_date", "bios_date", "bios-release-date"), ("bios_vendor", "bios_vendor", "bios-vendor"),
        ("bios_version", "bios_version", "bios-version"),
        ("board_asset_tag", "board_asset_tag", "baseboard-asset-tag"),
        ("board_name", "board_name", "baseboard-product-name"),
        ("board_serial", "board_serial", "baseboard-serial-number"),
        ("board_vendor", "board_vendor", "baseboard-manufacturer"),
        ("board_version", "board_version", "baseboard-version"),
        ("chassis_asset_tag", "chassis_asset_tag", "chassis-asset-tag"),
        ("chassis_serial", "chassis_serial", "chassis-serial-number"),
        ("chassis_vendor", "chassis_vendor", "chassis-manufacturer"),
        ("chassis_version", "chassis_version", "chassis-version"),
        ("form_factor", "chassis_type", "chassis-type"), ("product_name", "product_name", "system-product-name"),
        ("product_serial", "product_serial", "system-serial-number"),
        ("product_uuid", "product_uuid", "system-uuid"), ("product_version", "product_version", "system-version"),
        ("system_vendor", "sys_vendor", "system-manufacturer"))


def _dmi():
    """The DMI facts from sysfs (where it has them), else dmidecode's, else NA."""
    base = "/sys/devices/virtual/dmi/id/"
    out = {}
    if os.path.exists(base + "product_name"):
        for fact, name, _ in _DMI:
            data = _content(base + name)
            if data is None:
                out[fact] = "NA"
            elif fact == "form_factor":
                try:
                    out[fact] = _FORM_FACTORS[int(data)]
                except IndexError:
                    out[fact] = f"unknown ({data})"
            else:
                out[fact] = data
        return out
    dmidecode = _bin("dmidecode")
    for fact, _, keyword in _DMI:
        rc, text = _command([dmidecode, "-s", keyword]) if dmidecode else (None, "")
        out[fact] = "".join(ln for ln in text.splitlines() if not ln.startswith("#")) if rc == 0 else "NA"
    return out


def _bytes_to_human(size):
    """ansible-core's bytes_to_human: ``"1.50 GB"``, ``"512.00 Bytes"``."""
    units = (("Y", 1 << 80), ("Z", 1 << 70), ("E", 1 << 60), ("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30),
             ("M", 1 << 20), ("K", 1 << 10), ("B", 1))
    unit, limit = next(((u, n) for u, n in units if size >= n), units[-1])
    return f"{size / limit:.2f} {unit + 'B' if limit != 1 else 'Bytes'}"


def _links(directory):
    """{target device: [sorted link names]} of a /dev/disk/by-* directory."""
    out = {}
    try:
        entries = os.listdir(directory)
    except OSError:
        return out
    for entry in entries:
        try:
            out.setdefault(os.path.basename(os.readlink(os.path.join(directory, entry))), set()).add(entry)
        except OSError:
            continue
    return {k: sorted(v) for k, v in out.items()}


def _holders(sysdir):
    out = []
    if os.path.isdir(sysdir + "/holders"):
        for folder in os.listdir(sysdir + "/holders"):
            if folder.startswith("dm-"):
                out.append(_content(sysdir + "/holders/" + folder + "/dm/name") or folder)
    return out


def _devices():
    """devices and device_links from /sys/block and /dev/disk, as ansible-core's Linux hardware
    (``host``: the PCI device's line of ``lspci -D``; ``serial``: ``sg_inq``'s, without it sysfs's)."""
    import glob
    import re

    lspci = _bin("lspci")
    pcidata = _command([lspci, "-D"])[1] if lspci else None
    sg_inq = _bin("sg_inq")

    try:
        blocks = os.listdir("/sys/block")
    except OSError:
        return {"devices": {}}
    masters = {}
    for path in glob.glob("/sys/block/*/slaves/*"):
        parts = path.split("/")
        masters.setdefault(parts[5], set()).add(parts[3])
    links = {"ids": _links("/dev/disk/by-id"), "uuids": _links("/dev/disk/by-uuid"),
             "labels": _links("/dev/disk/by-label"), "masters": {k: sorted(v) for k, v in masters.items()}}
    wwn = {}
    for name, targets in links["ids"].items():
        for link in targets:
            if link.startswith("wwn-"):
                wwn[name] = link[4:]
    devices = {}
    for block in blocks:
        virtual = 1
        try:
            path = os.readlink(os.path.join("/sys/block/", block))
        except OSError as exc:
            import errno

            if exc.errno != errno.EINVAL:
                continue
            path = block
            virtual = 0 if any("device" in f for f in os.listdir(os.path.join("/sys/block", path))) else 1
        sysdir = os.path.join("/sys/block", path)
        d = {"virtual": virtual, "links": {k: v.get(block, []) for k, v in links.items()}}
        for key in ("vendor", "model", "sas_address", "sas_device_handle"):
            d[key] = _content(sysdir + "/device/" + key)
        if sg_inq:
            rc, text = _command([sg_inq, f"/dev/{block}"])
            found = re.search(r"(?:Unit serial|Serial) number:\s+(\w+)", text) if rc == 0 else None
            serial = found.group(1) if found else None
        else:
            serial = _content(f"/sys/block/{block}/device/serial")
        if serial:
            d["serial"] = serial
        d["removable"] = _content(sysdir + "/removable")
        d["support_discard"] = ("0" if _content(sysdir + "/queue/discard_max_hw_bytes") == "0"
                                else _content(sysdir + "/queue/discard_granularity"))
        if block in wwn:
            d["wwn"] = wwn[block]
        d["partitions"] = {}
        for folder in os.listdir(sysdir):
            m = re.search("(" + block + r"[p]?\d+)", folder)
            if m:
                name = m.group(1)
                psys = sysdir + "/" + name
                part = {"links": {k: v.get(name, []) for k, v in links.items()},
                        "start": _content(psys + "/start", 0),
                        "sectorsize": (_content(psys + "/queue/logical_block_size")
                                       or _content(psys + "/queue/hw_sector_size", 512))}
                part["sectors"] = int(_content(psys + "/size", 0)) * 512 // int(part["sectorsize"])
                part["size"] = _bytes_to_human(float(part["sectors"]) * float(part["sectorsize"]))
                part["uuid"] = (links["uuids"].get(name) or [None])[0]
                part["holders"] = _holders(psys)
                d["partitions"][name] = part
        d["rotational"] = _content(sysdir + "/queue/rotational")
        d["scheduler_mode"] = ""
        scheduler = _content(sysdir + "/queue/scheduler")
        if scheduler is not None:
            m = re.match(r".*?(\[(.*)\])", scheduler)
            if m:
                d["scheduler_mode"] = m.group(2)
        d["sectorsize"] = _content(sysdir + "/queue/logical_block_size") or _content(
            sysdir + "/queue/hw_sector_size", 512)
        d["sectors"] = int(_content(sysdir + "/size") or 0) * 512 // int(d["sectorsize"]) or 0
        d["size"] = _bytes_to_human(float(d["sectors"]) * float(d["sectorsize"]))
        d["host"] = ""
        pci = re.match(r".+/([a-f0-9]{4}:[a-f0-9]{2}:[0|1][a-f0-9]\.[0-7])/", sysdir)
        if pci and pcidata:
            line = re.search("^" + re.escape(pci.group(1)) + r"\s(.*)$", pcidata, re.MULTILINE)
            if line:
                d["host"] = line.group(1)
        d["holders"] = _holders(sysdir)
        devices[os.path.basename(sysdir)] = d
    return {"devices": devices, "device_links": links}


def _unescape_octal(value):
    import re

    return re.sub(r"\\[0-9]{3}", lambda m: chr(int(m.group()[1:], 8)), value)


def _mounts():
    """mounts as ansible-core lists them (/etc/mtab, else /proc/mounts; devices that are paths),
    with statvfs sizes read in threads bounded by gather_timeout; bind mounts (a mountinfo
    root other than /) get ``,bind`` as findmnt shows them to Ansible; ``uuid`` from
    /dev/disk/by-uuid."""
    import threading

    mtab = "/etc/mtab" if os.path.exists("/etc/mtab") else "/proc/mounts"
    binds = set()
    for line in (_read("/proc/self/mountinfo") or "").splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[3] != "/":
            binds.add(_unescape_octal(fields[4]))
    uuids = {}
    for uuid, devs in _links("/dev/disk/by-uuid").items():
        for dev in devs:
            uuids["/dev/" + dev] = uuid
    by_uuid = {}
    try:
        for entry in os.listdir("/dev/disk/by-uuid"):
            by_uuid[os.path.realpath("/dev/disk/by-uuid/" + entry)] = entry
    except OSError:
        pass
    entries, sizes = [], {}

    def size_of(mount):
        try:
            st = os.statvfs(mount)
        except OSError:
            sizes[mount] = {}
            return
        sizes[mount] = {"size_total": st.f_frsize * st.f_blocks, "size_available": st.f_frsize * st.f_bavail,
                        "block_size": st.f_bsize, "block_total": st.f_blocks, "block_available": st.f_bavail,
                        "block_used": st.f_blocks - st.f_bavail, "inode_total": st.f_files,
                        "inode_available": st.f_favail, "inode_used": st.f_files - st.f_favail}

    threads = []
    for line in (_read(mtab) or "").splitlines():
        fields = [_unescape_octal(f) for f in line.split()]
        if len(fields) < 6:
            continue
        device, mount, fstype, options = fields[:4]
        if not device.startswith(("/", "\\")) and ":/" not in device or fstype == "none":
            continue
        info = {"mount": mount, "device": device, "fstype": fstype, "options": options, "dump": int(fields[4]),
                "passno": int(fields[5])}
        if mount in binds and "bind" not in options:
            info["options"] += ",bind"
        entries.append(info)
        thread = threading.Thread(target=size_of, args=(mount,), daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + _TIMEOUT[0]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for info in entries:
        if info["mount"] in sizes:
            info.update(sizes[info["mount"]])
            info["uuid"] = by_uuid.get(os.path.realpath(info["device"])) or "N/A"
        else:
            info["note"] = "Could not get extra information due to timeout"
    return {"mounts": entries}


def _lvm():
    """lvm: "N/A" unless root with vgs (then its volume groups, as ansible-core's)."""
    if os.geteuid() != 0 or not _bin("vgs"):
        return {"lvm": "N/A"}
    options = ["--noheadings", "--nosuffix", "--units", "g", "--separator", ","]
    vgs, lvs, pvs = {}, {}, {}
    rc, out = _command([_bin("vgs")] + options)
    for line in out.splitlines() if rc == 0 else ():
        items = line.strip().split(",")
        vgs[items[0]] = {"size_g": items[-2], "free_g": items[-1], "num_lvs": items[2], "num_pvs": items[1]}
    if _bin("lvs"):
        rc, out = _command([_bin("lvs")] + options)
        for line in out.splitlines() if rc == 0 else ():
            items = line.strip().split(",")
            lvs[items[0]] = {"size_g": items[3], "vg": items[1]}
    if _bin("pvs"):
        rc, out = _command([_bin("pvs")] + options)
        for line in out.splitlines() if rc == 0 else ():
            items = line.strip().split(",")
            pvs[items[0]] = {"size_g": items[4], "free_g": items[5], "vg": items[1]}
    return {"lvm": {"lvs": lvs, "vgs": vgs, "pvs": pvs}}


def _hardware(facts):
    out = {}
    out.update(_cpu(facts))
    out.update(_memory())
    if os.uname().sysname != "Linux":
        return out
    out.update(_dmi())
    out.update(_devices())
    uptime = _content("/proc/uptime")
    if uptime:
        out["uptime_seconds"] = int(float(uptime.split(" ")[0]))
    out.update(_lvm())
    out.update(_mounts())
    return out


_IF_TYPES = {"1": "ether", "32": "infiniband", "512": "ppp", "772": "loopback", "65534": "tunnel"}


def _sysfs_interface(device, path):
    """An interface's facts from /sys/class/net/DEVICE (ansible-core's LinuxNetwork, no ethtool)."""
    import glob

    join = os.path.join
    out = {"device": device}
    mac = _content(join(path, "address"), "")
    if mac and mac != "00:00:00:00:00:00":
        out["macaddress"] = mac
    if os.path.exists(join(path, "mtu")):
        out["mtu"] = int(_content(join(path, "mtu")))
    if os.path.exists(join(path, "operstate")):
        out["active"] = _content(join(path, "operstate")) != "down"
    if os.path.exists(join(path, "device", "driver", "module")):
        out["module"] = os.path.basename(os.path.realpath(join(path, "device", "driver", "module")))
    if os.path.exists(join(path, "type")):
        out["type"] = _IF_TYPES.get(_content(join(path, "type")), "unknown")
    if os.path.exists(join(path, "bridge")):
        out["type"] = "bridge"
        out["interfaces"] = [os.path.basename(b) for b in glob.glob(join(path, "brif", "*"))]
        if os.path.exists(join(path, "bridge", "bridge_id")):
            out["id"] = _content(join(path, "bridge", "bridge_id"), "")
        if os.path.exists(join(path, "bridge", "stp_state")):
            out["stp"] = _content(join(path, "bridge", "stp_state")) == "1"
    if os.path.exists(join(path, "bonding")):
        out["type"] = "bonding"
        out["slaves"] = _content(join(path, "bonding", "slaves"), "").split()
        for key in ("mode", "miimon", "lacp_rate"):
            out[key] = (_content(join(path, "bonding", key), "").split() or [""])[0]
        primary = _content(join(path, "bonding", "primary"))
        if primary:
            out["primary"] = primary
            if os.path.exists(join(path, "bonding", "all_slaves_active")):
                out["all_slaves_active"] = _content(join(path, "bonding", "all_slaves_active")) == "1"
    if os.path.exists(join(path, "bonding_slave")):
        out["perm_macaddress"] = _content(join(path, "bonding_slave", "perm_hwaddr"), "")
    if os.path.exists(join(path, "device")):
        out["pciid"] = os.path.basename(os.readlink(join(path, "device")))
    if os.path.exists(join(path, "speed")):
        speed = _content(join(path, "speed"))
        if speed is not None:
            try:
                out["speed"] = int(speed)
            except ValueError:
                pass
    if os.path.exists(join(path, "flags")):
        out["promisc"] = int(_content(join(path, "flags")), 16) & 0x0100 > 0
    return out


def _ethtool(ethtool, device):
    """An interface's ``features`` (``ethtool -k``), ``timestamping``, ``hw_timestamp_filters`` and
    ``phc_index`` (``ethtool -T``), as ansible-core's LinuxNetwork.get_ethtool_data reads them."""
    import re

    data = {}
    rc, text = _command([ethtool, "-k", device])
    if rc == 0:
        features = {}
        for line in text.strip().splitlines():
            if not line or line.endswith(":"):
                continue
            key, _, value = line.partition(": ")
            if value:
                features[key.strip().replace("-", "_")] = value.strip()
        data["features"] = features
    rc, text = _command([ethtool, "-T", device])
    if rc == 0:
        data["timestamping"] = [m.lower() for m in re.findall(r"SOF_TIMESTAMPING_(\w+)", text)]
        data["hw_timestamp_filters"] = [m.lower() for m in re.findall(r"HWTSTAMP_FILTER_(\w+)", text)]
        found = re.search(r"PTP Hardware Clock: (\d+)", text)
        if found:
            data["phc_index"] = int(found.group(1))
    return data


def _ipv4(address, prefix, broadcast=""):
    import struct

    bits = (1 << 32) - (1 << 32 >> int(prefix))
    addr = struct.unpack("!L", socket.inet_aton(address))[0]
    return {"address": address, "broadcast": broadcast, "netmask": socket.inet_ntoa(struct.pack("!L", bits)),
            "network": socket.inet_ntoa(struct.pack("!L", addr & bits)), "prefix": str(prefix)}


def _addresses():
    """Every address as (device, family, entry, label, secondary): ``ip -j addr`` when there is
    ``ip``, else /proc/net/if_inet6 and the SIOCGIFADDR ioctls."""
    import json

    ip = _bin("ip")
    if ip:
        rc, out = _command([ip, "-j", "addr", "show"])
        try:
            links = json.loads(out) if rc == 0 else None
        except ValueError:
            links = None
        if isinstance(links, list):
            found = []
            for link in links:
                for info in link.get("addr_info") or []:
                    found.append((link.get("ifname"), info))
            return found
    found = []
    scopes = {0: "global", 0x40: "site", 0x20: "link", 0x10: "host"}
    for line in (_read("/proc/net/if_inet6") or "").splitlines():
        parts = line.split()
        if len(parts) == 6:
            raw = parts[0]
            text = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(raw))
            scope = scopes.get(int(parts[3], 16), "global")
            found.append((parts[5], {"family": "inet6", "local": text, "prefixlen": int(parts[2], 16),
                                     "scope": scope}))
    # the kernel keeps an interface's IPv6 addresses by scope, widest first (what ``ip`` lists);
    # /proc/net/if_inet6 lists them in its hash table's order
    widest = list(scopes.values())
    found.sort(key=lambda entry: widest.index(entry[1]["scope"]))
    try:
        import fcntl
        import struct

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except (ImportError, OSError):
        return found
    v4 = []
    try:
        for _, name in socket.if_nameindex():
            packed = struct.pack("256s", name.encode()[:15])
            try:
                addr = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x8915, packed)[20:24])  # SIOCGIFADDR
                mask = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x891B, packed)[20:24])  # SIOCGIFNETMASK
            except OSError:
                continue
            info = {"family": "inet", "local": addr,
                    "prefixlen": bin(struct.unpack("!L", socket.inet_aton(mask))[0]).count("1")}
            if int(_content(f"/sys/class/net/{name}/flags", "0"), 16) & 0x2:  # IFF_BROADCAST
                try:
                    info["broadcast"] = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), 0x8919, packed)[20:24])
                except OSError:
                    pass
            v4.append((name, info))
    finally:
        sock.close()
    return v4 + found


def _route_to(family, target):
    """(interface, gateway) of the route the kernel would take to ``target`` (a route table's
    longest prefix, then lowest metric): ansible-core asks ``ip route get`` the same."""
    best = None
    if family == 4:
        import struct

        dest = struct.unpack("!L", socket.inet_aton(target))[0]
        for line in (_read("/proc/net/route") or "").splitlines()[1:]:
            parts = line.split()
            if len(parts) < 8 or not int(parts[3], 16) & 1:  # RTF_UP
                continue
            net = struct.unpack("<L", bytes.fromhex(parts[1]))[0]
            mask = struct.unpack("<L", bytes.fromhex(parts[7]))[0]
            if dest & mask == net:
                gw = socket.inet_ntoa(struct.pack("<L", int(parts[2], 16)))
                key = (bin(mask).count("1"), -int(parts[6]))
                if best is None or key > best[0]:
                    best = (key, parts[0], gw if gw != "0.0.0.0" else None)
    else:
        dest = int.from_bytes(socket.inet_pton(socket.AF_INET6, target), "big")
        for line in (_read("/proc/net/ipv6_route") or "").splitlines():
            parts = line.split()
            if len(parts) < 10 or parts[9] == "lo" or int(parts[8], 16) & 0x0201 != 1:  # up, not reject
                continue
            plen = int(parts[1], 16)
            net = int(parts[0], 16)
            if plen and dest >> (128 - plen) != net >> (128 - plen):
                continue
            gw = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(parts[4]))
            key = (plen, -int(parts[5], 16))
            if best is None or key > best[0]:
                best = (key, parts[9], gw if gw != "::" else None)
    return (best[1], best[2]) if best else (None, None)


def _source_address(family, target):
    sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.connect((target, 9))  # no packet is sent
        return sock.getsockname()[0]
    except OSError:
        return None
    finally:
        sock.close()


def _locally_reachable(ip):
    out = {"ipv4": [], "ipv6": []}
    for flag, key in (("-4", "ipv4"), ("-6", "ipv6")):
        rc, text = _command([ip, flag, "route", "show", "table", "local"])
        for line in text.splitlines() if rc == 0 else ():
            words = line.split()
            if words and words[0] == "local" and words[1] not in out[key]:
                out["ipv6" if ":" in words[1] else "ipv4"].append(words[1])
    return out


def _network(facts):
    """ansible-core's LinuxNetwork facts: interfaces (sysfs), their addresses, default_ipv4/6 (the
    route and source address toward the same targets as Ansible's ``ip route get``), all
    addresses, locally_reachable_ips (with ``ip``)."""
    import glob

    if os.uname().sysname != "Linux":
        return {}
    interfaces = {}
    for path in glob.glob("/sys/class/net/*"):
        if os.path.isdir(path):
            interfaces[os.path.basename(path)] = _sysfs_interface(os.path.basename(path), path)
    sysfs = list(interfaces)
    defaults = {}
    for family, target in ((4, "8.8.8.8"), (6, "2404:6800:400a:800::1012")):
        iface, gateway = _route_to(family, target)
        entry = {}
        if iface:
            entry["interface"] = iface
            address = _source_address(family, target)
            if address:
                entry["address"] = address
            if gateway:
                entry["gateway"] = gateway
        defaults[family] = entry
    v4, v6 = defaults[4], defaults[6]
    all4, all6 = [], []
    for device, info in _addresses():
        if device not in interfaces:
            continue
        iface = interfaces[device]
        if info.get("family") == "inet":
            address = info.get("local")
            entry = _ipv4(address, info.get("prefixlen", 32), info.get("broadcast", ""))
            label = info.get("label") or device
            target = interfaces.setdefault(label, {}) if label != device else iface
            if not info.get("secondary") and "ipv4" not in target:
                target["ipv4"] = entry
            else:
                target.setdefault("ipv4_secondaries", []).append(entry)
                if info.get("secondary") and label != device:
                    iface.setdefault("ipv4_secondaries", []).append(entry)
            if v4.get("address") == address:
                v4.update({k: entry[k] for k in ("broadcast", "netmask", "network", "prefix")})
                v4.update(macaddress=iface.get("macaddress", "unknown"), mtu=iface.get("mtu"),
                          type=iface.get("type", "unknown"), alias=label)
            if not address.startswith("127."):
                all4.append(address)
        elif info.get("family") == "inet6":
            address = info.get("local")
            entry = {"address": address, "prefix": str(info.get("prefixlen")), "scope": info.get("scope")}
            iface.setdefault("ipv6", []).append(entry)
            if v6.get("address") == address:
                v6.update(prefix=entry["prefix"], scope=entry["scope"], macaddress=iface.get("macaddress", "unknown"),
                          mtu=iface.get("mtu"), type=iface.get("type", "unknown"))
            if address != "::1":
                all6.append(address)
    ip = _bin("ip")
    ethtool = _bin("ethtool") if ip else None  # Ansible asks ethtool only on its ``ip`` path
    for device in sysfs if ethtool else ():
        interfaces[device].update(_ethtool(ethtool, device))
    out = {}
    for name, value in interfaces.items():
        out[name.replace(":", "_")] = value
    result = {"interfaces": list(out), "default_ipv4": v4, "default_ipv6": v6, "all_ipv4_addresses": all4,
              "all_ipv6_addresses": all6,
              "locally_reachable_ips": _locally_reachable(ip) if ip else {"ipv4": [], "ipv6": []}}
    result.update(out)
    return result


# /sys/devices/virtual/dmi/id values that name a hypervisor: (file, values, tech)
_DMI_GUESTS = (
    ("product_name", ("KVM", "KVM Server", "Bochs", "AHV", "CloudStack KVM Hypervisor"), "kvm"),
    ("sys_vendor", ("oVirt",), "oVirt"),
    ("product_name", ("OpenStack Compute", "OpenStack Nova"), "openstack"),
    ("bios_vendor", ("Xen",), "xen"),
    ("bios_vendor", ("innotek GmbH",), "virtualbox"),
    ("bios_vendor", ("Amazon EC2", "DigitalOcean", "Hetzner", "Linode"), "kvm"),
    ("sys_vendor", ("QEMU", "Amazon EC2", "DigitalOcean", "Google", "Scaleway", "Nutanix"), "kvm"),
    ("sys_vendor", ("KubeVirt",), "KubeVirt"),
    ("sys_vendor", ("Microsoft Corporation",), "VirtualPC"),
    ("sys_vendor", ("Parallels Software International Inc.",), "parallels"),
    ("sys_vendor", ("OpenStack Foundation",), "openstack"),
)


def _virtual(facts):
    """virtualization_type/role/tech_guest/tech_host by ansible-core's Linux rules (cgroups, PID 1's
    environment, /run/systemd/container, /.dockerenv, Xen, DMI, cpuinfo, kernel modules, /dev/kvm)."""
    import re

    if os.uname().sysname != "Linux":
        return {}
    out, guest, host = {}, set(), set()
    found = [False]

    def hit(tech, role=None, kind=None, techs=guest, setrole=True):
        techs.add(tech)
        if not found[0]:
            out["virtualization_type"] = kind or tech
            if role and setrole:
                out["virtualization_role"] = role
            found[0] = True

    for line in (_read("/proc/1/cgroup") or "").splitlines():
        if re.search(r"/docker(/|-[0-9a-f]+\.scope)", line):
            hit("docker", "guest")
        if re.search("/lxc/", line) or re.search("/machine.slice/machine-lxc", line):
            hit("lxc", "guest")
        if re.search("/system.slice/containerd.service", line):
            hit("containerd", "guest")
    for line in (_read("/proc/1/environ") or "").split("\x00"):
        if "container=lxc" in line:
            hit("lxc", "guest")
        if "container=podman" in line:
            hit("podman", "guest")
        if re.search("^container=.", line):
            hit("container", "guest")
    if os.path.exists("/proc/vz") and not os.path.exists("/proc/lve"):
        out["virtualization_type"] = "openvz"
        is_host = os.path.exists("/proc/bc")
        (host if is_host else guest).add("openvz")
        if not found[0]:
            out["virtualization_role"] = "host" if is_host else "guest"
        found[0] = True
    container = _content("/run/systemd/container")
    if container:
        hit(container, "guest")
    if os.path.exists("/.dockerenv") or os.path.exists("/.dockerinit"):
        hit("docker", "guest")
    if guest & {"docker", "lxc", "podman", "openvz", "containerd"} or container:
        guest.add("container")
    if os.path.exists("/proc/xen"):
        if "control_d" in (_read("/proc/xen/capabilities") or ""):
            hit("xen", "host", techs=host)
        else:
            if not found[0]:
                out.update(virtualization_type="xen", virtualization_role="guest")
            found[0] = True
    if not found[0]:
        out["virtualization_role"] = "guest"
    dmi = "/sys/devices/virtual/dmi/id/"
    values = {name: _content(dmi + name) for name in ("product_name", "sys_vendor", "product_family", "bios_vendor")}
    for name, matches, tech in _DMI_GUESTS[:2]:
        if values[name] in matches:
            hit(tech)
    if values["sys_vendor"] == "Red Hat":
        if values["product_family"] == "RHV":
            hit("RHV")
        elif values["product_name"] == "RHEV Hypervisor":
            hit("RHEV")
    if values["product_name"] and values["product_name"].startswith("VMware"):
        hit("VMware")
    for name, matches, tech in _DMI_GUESTS[2:]:
        if values[name] in matches:
            hit(tech)
    if not found[0]:
        out.pop("virtualization_role", None)
    for line in (_read("/proc/self/status") or "").splitlines():
        if re.match(r"^VxID:\s+\d+", line):
            role = "host" if re.match(r"^VxID:\s+0", line) else "guest"
            hit("linux_vserver", role, techs=host if role == "host" else guest)
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        for pattern, tech in (("^model name.*QEMU Virtual CPU", "kvm"), ("^vendor_id.*User Mode Linux", "uml"),
                              ("^model name.*UML", "uml"), ("^machine.*CHRP IBM pSeries .emulated by qemu.", "kvm"),
                              ("^vendor_id.*PowerVM Lx86", "powervm_lx86"), ("^vendor_id.*IBM/S390", "PR/SM")):
            if re.match(pattern, line):
                hit(tech, "LPAR" if tech == "PR/SM" else "guest")
                break
    if os.access("/proc/modules", os.R_OK):
        modules = [line.split(" ", 1)[0] for line in (_read("/proc/modules") or "").splitlines()]
        if "kvm" in modules:
            hit("kvm", "host", techs=host)
            found[0] = True
        if "vboxdrv" in modules:
            hit("virtualbox", "host", techs=host)
        if "virtio" in modules:
            hit("kvm", "guest")
    dmidecode = _bin("dmidecode")
    if dmidecode:
        rc, text = _command([dmidecode, "-s", "system-product-name"])
        if rc == 0:
            if "".join(ln.strip() for ln in text.splitlines() if not ln.startswith("#")).startswith("VMware"):
                hit("VMware", "guest")
            if "BHYVE" in text:
                hit("bhyve", "guest")
    if os.path.exists("/dev/kvm"):
        hit("kvm", "host", techs=host)
    if not found[0]:
        out.update(virtualization_type="NA", virtualization_role="NA")
    out["virtualization_tech_guest"] = sorted(guest)
    out["virtualization_tech_host"] = sorted(host)
    return out


def _lsb(facts):
    """lsb: ``lsb_release -a``, else /etc/lsb-release (ansible-core's LSBFactCollector)."""
    lsb = {}
    path = _bin("lsb_release")
    rc, text = _command([path, "-a"]) if path else (None, "")
    if rc == 0:
        for line in text.splitlines():
            if ":" not in line:
                continue
            value = line.split(":", 1)[1].strip()
            for label, key in (("LSB Version:", "release"), ("Distributor ID:", "id"),
                               ("Description:", "description"), ("Release:", "release"), ("Codename:", "codename")):
                if label in line:
                    lsb[key] = value
                    break
    if not lsb and os.path.exists("/etc/lsb-release"):
        for line in (_read("/etc/lsb-release") or "").splitlines():
            value = line.split("=", 1)[1].strip() if "=" in line else ""
            for label, key in (("DISTRIB_ID", "id"), ("DISTRIB_RELEASE", "release"),
                               ("DISTRIB_DESCRIPTION", "description"), ("DISTRIB_CODENAME", "codename")):
                if label in line:
                    lsb[key] = value
                    break
    if "release" in lsb:
        lsb["major_release"] = lsb["release"].split(".")[0]
    return {"lsb": {k: v.strip("'\"\\") if v else v for k, v in lsb.items()}}


def _dns(facts):
    dns = {}
    for line in (_read("/etc/resolv.conf") or "").splitlines():
        if line.startswith(("#", ";")) or not line.strip():
            continue
        tokens = line.split()
        if tokens[0] == "nameserver":
            dns.setdefault("nameservers", []).extend(tokens[1:])
        elif tokens[0] == "domain" and len(tokens) > 1:
            dns["domain"] = tokens[1]
        elif tokens[0] in ("search", "sortlist"):
            dns[tokens[0]] = tokens[1:]
        elif tokens[0] == "options":
            dns["options"] = {}
            for option in tokens[1:]:
                key, sep, value = option.partition(":")
                dns["options"][key] = value if sep and value else True
    return {"dns": dns}


def _cmdline(facts):
    import shlex

    data = _content("/proc/cmdline")
    if not data:
        return {}
    cmdline, proc = {}, {}
    try:
        pieces = shlex.split(data, posix=False)
    except ValueError:
        pieces = []
    for piece in pieces:
        key, sep, value = piece.partition("=")
        if not sep:
            cmdline[key] = proc[key] = True
            continue
        cmdline[key] = value
        if key in proc:
            proc[key] = (proc[key] if isinstance(proc[key], list) else [proc[key]]) + [value]
        else:
            proc[key] = value
    return {"cmdline": cmdline, "proc_cmdline": proc}


def _ssh_pub_keys(facts):
    out = {}
    for keydir in ("/etc/ssh", "/etc/openssh", "/etc"):
        for algo in ("dsa", "rsa", "ecdsa", "ed25519"):
            name = f"ssh_host_key_{algo}_public"
            if name in out:
                return out
            data = _content(f"{keydir}/ssh_host_{algo}_key.pub")
            if data is not None:
                keytype, key = data.split()[0:2]
                out[name] = key
                out[name + "_keytype"] = keytype
    return out


def _caps(facts):
    out = {"system_capabilities_enforced": "N/A", "system_capabilities": "N/A"}
    capsh = _bin("capsh")
    rc, text = _command([capsh, "--print"]) if capsh else (None, "")
    if rc == 0:
        enforced, caps = "NA", []
        for line in text.splitlines():
            if line.startswith("Current:"):
                if line.split(":")[1].strip() == "=ep":
                    enforced = "False"
                else:
                    enforced = "True"
                    caps = [c.strip() for c in line.split("=")[1].split(",")]
        out = {"system_capabilities_enforced": enforced, "system_capabilities": caps}
    return out


def _chroot(facts):
    if os.environ.get("debian_chroot"):
        return {"is_chroot": True}
    mine = os.stat("/")
    try:
        theirs = os.stat("/proc/1/root/.")
        return {"is_chroot": mine.st_ino != theirs.st_ino or mine.st_dev != theirs.st_dev}
    except OSError:
        return {"is_chroot": mine.st_ino != 2}


def _loadavg(facts):
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return {}
    return {"loadavg": {"1m": one, "5m": five, "15m": fifteen}}


def _systemd(facts):
    systemctl = _bin("systemctl")
    if not systemctl or not any(os.path.exists(p) for p in ("/run/systemd/system/", "/dev/.run/systemd/",
                                                            "/dev/.systemd/")):
        return {}
    rc, text = _command([systemctl, "--version"])
    if rc != 0:
        return {}
    return {"systemd": {"features": str(text.split("\n")[1]), "version": int(text.split(" ")[1])}}


def _iscsi(facts):
    iqn = ""
    if sys.platform.startswith("linux"):
        for line in (_content("/etc/iscsi/initiatorname.iscsi", "") or "").splitlines():
            if line.startswith(("#", ";")) or not line.strip():
                continue
            if line.startswith("InitiatorName="):
                iqn = line.split("=", 1)[1]
                break
    return {"iscsi_iqn": iqn}


def _nvme(facts):
    nqn = ""
    if sys.platform.startswith("linux"):
        for line in (_content("/etc/nvme/hostnqn", "") or "").splitlines():
            if line.startswith("nqn."):
                nqn = line
                break
    return {"hostnqn": nqn}


def _fc_wwn(facts):
    import glob

    wwn = []
    if sys.platform.startswith("linux"):
        for path in glob.glob("/sys/class/fc_host/*/port_name"):
            wwn.extend(line.rstrip()[2:] for line in (_read(path) or "").splitlines())
    return {"fibre_channel_wwn": wwn}


def _apparmor(facts):
    return {"apparmor": {"status": "enabled" if os.path.exists("/sys/kernel/security/apparmor") else "disabled"}}


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


def _user(facts):
    """ansible-core's UserFactCollector: the login name (getpass: LOGNAME, USER, LNAME, USERNAME,
    else the uid's entry) and its password entry."""
    import getpass
    import pwd

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        try:
            pw = pwd.getpwuid(os.getuid())
        except KeyError:
            pw = None
    out = {"user_id": name}
    if pw is None:
        out.update(user_uid=os.getuid(), user_gid=os.getgid(), user_gecos="",
                   user_dir=os.environ.get("HOME", ""), user_shell="")
    else:
        out.update(user_uid=pw.pw_uid, user_gid=pw.pw_gid, user_gecos=pw.pw_gecos, user_dir=pw.pw_dir,
                   user_shell=pw.pw_shell)
    out.update(real_user_id=os.getuid(), effective_user_id=os.geteuid(), real_group_id=os.getgid(),
               effective_group_id=os.getgid())
    return out


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


def _python(facts):
    try:
        import ssl  # noqa: F401  (ansible-core: create_default_context and SSLContext import)

        has_ssl = hasattr(ssl, "SSLContext") and hasattr(ssl, "create_default_context")
    except ImportError:
        has_ssl = False
    vi = sys.version_info
    return {"python": {"version": {"major": vi[0], "minor": vi[1], "micro": vi[2], "releaselevel": vi[3],
                                   "serial": vi[4]},
                       "version_info": list(vi), "executable": sys.executable, "has_sslcontext": has_ssl,
                       "type": sys.implementation.name}}


def _pkg_mgr(facts):
    return {"pkg_mgr": next((name for path, name in _PKG_MGRS if os.path.exists(path)), "unknown")}


def _distribution_facts(facts):
    out = _distribution(facts.get("system") or os.uname().sysname)
    parts = out["distribution_version"].split(".")
    out["distribution_minor_version"] = parts[1] if len(parts) > 1 else ""
    if (facts.get("system") or os.uname().sysname) == "Linux":
        out.update(_distribution_file(out["distribution"]))
    return out


# ansible-core's DistributionFiles.OSDIST_LIST: (path, name, allow empty), searched in order
_OSDIST_LIST = (
    ("/etc/altlinux-release", "Altlinux", False), ("/etc/oracle-release", "OracleLinux", False),
    ("/etc/slackware-version", "Slackware", False), ("/etc/centos-release", "CentOS", False),
    ("/etc/redhat-release", "RedHat", False), ("/etc/vmware-release", "VMwareESX", True),
    ("/etc/openwrt_release", "OpenWrt", False), ("/etc/os-release", "Amazon", False),
    ("/etc/system-release", "Amazon", False), ("/etc/alpine-release", "Alpine", False),
    ("/etc/arch-release", "Archlinux", True), ("/etc/os-release", "Archlinux", False),
    ("/etc/os-release", "SUSE", False), ("/etc/SuSE-release", "SUSE", False),
    ("/etc/gentoo-release", "Gentoo", False), ("/etc/os-release", "Debian", False),
    ("/etc/lsb-release", "Debian", False), ("/etc/lsb-release", "Mandriva", False),
    ("/etc/sourcemage-release", "SMGL", False), ("/usr/lib/os-release", "ClearLinux", False),
    ("/etc/coreos/update.conf", "Coreos", False), ("/etc/os-release", "Flatcar", False),
    ("/etc/os-release", "NA", False),
)
_SEARCH_NAMES = ("OracleLinux", "RedHat", "Altlinux", "SMGL")  # any content is theirs
_DEBIAN_WORDS = ("Debian", "Raspbian", "Ubuntu", "SteamOS", "Devuan", "Cumulus", "Mint", "UOS", "Uos", "uos",
                 "Deepin", "deepin", "LMDE")


def _dist_file_parsed(name, data, path, distribution):
    """Whether ansible-core's parser for ``name`` takes the file (its ``parse_distribution_file_*``
    result; the values it would set are the os-release ones the runtime already has)."""
    if name in _SEARCH_NAMES or name in ("Alpine", "NA"):
        return True
    if name == "Archlinux":
        return "Arch Linux" in data
    if name in ("Slackware", "Amazon", "OpenWrt", "Mandriva"):
        return name in data
    if name == "SUSE":
        return "suse" in data.lower()
    if name == "Debian":
        return any(w in data for w in _DEBIAN_WORDS) or (
            path in ("/etc/lsb-release", "/etc/os-release") and ("Kali" in data or "Parrot" in data))
    if name in ("Coreos", "Flatcar"):
        return distribution.lower() == name.lower() and bool(data)
    if name == "ClearLinux":
        found = re.search('NAME="(.*)"', data)
        return not found or "Clear Linux" in found.group(1)
    if name == "CentOS":
        return "CentOS Stream" in data or "TencentOS Server" in data
    return False  # Gentoo: ansible-core has no parser for it


def _distribution_file(distribution):
    """``distribution_file_path``/``_variety``/``_parsed``: the first file of ansible-core's list
    that exists (not empty, unless allowed) and that its parser takes."""
    for path, name, allow_empty in _OSDIST_LIST:
        if not os.path.isfile(path) or (not allow_empty and os.path.getsize(path) == 0):
            continue
        if allow_empty:
            return {"distribution_file_path": path, "distribution_file_variety": name}
        try:
            with open(path, "rb") as f:
                data = f.read().decode("utf-8", "replace").strip().strip("'\"\\")
        except OSError:
            continue
        if _dist_file_parsed(name, data, path, distribution):
            return {"distribution_file_path": path, "distribution_file_variety": name,
                    "distribution_file_parsed": True}
    return {}


# ansible-core's collectors, in the order its setup runs them (a collector reads the facts of
# those before it: hardware the architecture, service_mgr the system), each with the facts it
# gives (those with names of their own: network adds one per interface too)
COLLECTORS = (
    ("platform", _platform, ("system", "kernel", "kernel_version", "machine", "python_version", "fqdn",
                             "hostname", "nodename", "domain", "userspace_bits", "architecture",
                             "userspace_architecture", "machine_id")),
    ("distribution", _distribution_facts, ("distribution", "os_family", "distribution_version",
                                           "distribution_major_version", "distribution_release",
                                           "distribution_minor_version", "distribution_file_path",
                                           "distribution_file_variety", "distribution_file_parsed")),
    ("selinux", lambda facts: _selinux(), ("selinux", "selinux_python_present")),
    ("apparmor", _apparmor, ("apparmor",)),
    ("caps", _caps, ("system_capabilities", "system_capabilities_enforced")),
    ("chroot", _chroot, ("is_chroot",)),
    ("cmdline", _cmdline, ("cmdline", "proc_cmdline")),
    ("date_time", lambda facts: {"date_time": _date_time()}, ("date_time",)),
    ("env", lambda facts: {"env": dict(os.environ)}, ("env",)),
    ("fips", lambda facts: {"fips": _fips()}, ("fips",)),
    ("loadavg", _loadavg, ("loadavg",)),
    ("lsb", _lsb, ("lsb",)),
    ("pkg_mgr", _pkg_mgr, ("pkg_mgr",)),
    ("python", _python, ("python",)),
    ("service_mgr", _service_mgr, ("service_mgr",)),
    ("ssh_pub_keys", _ssh_pub_keys, tuple(f"ssh_host_key_{a}_public{s}" for a in ("dsa", "rsa", "ecdsa", "ed25519")
                                          for s in ("", "_keytype"))),
    ("user", _user, ("user_id", "user_uid", "user_gid", "user_gecos", "user_dir", "user_shell", "real_user_id",
                     "effective_user_id", "real_group_id", "effective_group_id")),
    ("dns", _dns, ("dns",)),
    ("systemd", _systemd, ("systemd",)),
    ("hardware", _hardware, ("processor", "processor_count", "processor_cores", "processor_threads_per_core",
                             "processor_vcpus", "processor_nproc", "flags", "memtotal_mb", "memfree_mb",
                             "swaptotal_mb", "swapfree_mb", "memory_mb", "devices", "device_links",
                             "uptime_seconds", "lvm", "mounts") + tuple(fact for fact, _, _ in _DMI)),
    ("network", _network, ("interfaces", "default_ipv4", "default_ipv6", "all_ipv4_addresses",
                           "all_ipv6_addresses", "locally_reachable_ips")),
    ("virtual", _virtual, ("virtualization_type", "virtualization_role", "virtualization_tech_guest",
                           "virtualization_tech_host")),
    ("fibre_channel_wwn", _fc_wwn, ("fibre_channel_wwn",)),
    ("iscsi", _iscsi, ("iscsi_iqn",)),
    ("nvme", _nvme, ("hostnqn",)),
)
COLLECTOR_NAMES = tuple(name for name, _, _ in COLLECTORS)
# fact name (no prefix) -> the collector that gives it
FACT_COLLECTOR = {fact: name for name, _, facts in COLLECTORS for fact in facts}


def collector_of(name):
    """The collector that gives fact ``name`` (no prefix): network for a network interface's
    (``eth0``, ``eth0_1`` for the label ``eth0:1``), None for a name no collector gives (an
    undefined variable must not cost a gathering)."""
    if name in FACT_COLLECTOR:
        return FACT_COLLECTOR[name]
    try:
        devices = os.listdir("/sys/class/net")
    except OSError:
        return None
    return "network" if any(name == d or name.startswith(d + "_") for d in devices) else None


def gather(names=None, timeout=10, facts=None):
    """Run the collectors ``names`` (every one without), in ansible-core's order, and return
    their facts with the ``ansible_`` prefix. ``facts``: those gathered already (prefixed),
    which a collector may read (hardware reads the architecture). ``timeout``: gather_timeout,
    the bound of each command and mount point a collector waits for."""
    _TIMEOUT[0] = timeout
    known = {k[8:]: v for k, v in (facts or {}).items() if k.startswith("ansible_")}
    out = {}
    for name, collect, _ in COLLECTORS:
        if names is None or name in names:
            found = collect(known)
            known.update(found)
            out.update(found)
    return {"ansible_" + k: v for k, v in out.items()}


# gather_subset as ansible-core's setup reads it (module_utils/facts/collector.py): the names it
# accepts, the minimal set every gathering includes unless "!min", the collectors a collector
# needs (which bring their facts too), and the collector a fine-grained name selects
# (facter and ohai are accepted and give nothing, as where those tools are not installed)
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
_REQUIRES = {"hardware": ("platform",), "network": ("platform", "distribution"),
             "service_mgr": ("platform", "distribution"), "pkg_mgr": ("distribution",)}
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
                                "interfaces")]
    + [(k, "virtual") for k in ("virtualization_role", "virtualization_tech_guest", "virtualization_tech_host",
                                "virtualization_type")]
    + [(k, "ssh_pub_keys") for k in ("ssh_host_key_dsa_public", "ssh_host_key_ecdsa_public",
                                     "ssh_host_key_ed25519_public", "ssh_host_key_rsa_public", "ssh_host_pub_keys")]
    + [(k, "caps") for k in ("system_capabilities", "system_capabilities_enforced")] + [("is_chroot", "chroot")])


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
    """The gathered ``facts`` (``ansible_`` names) that the ``chosen`` collectors give: network's
    include one per interface; facts a module set (``services``...) are no collector's."""
    out = {}
    for key, value in facts.items():
        name = key[8:] if key.startswith("ansible_") else key
        collector = FACT_COLLECTOR.get(name) or ("local" if name == "local" else None)
        if collector is None and isinstance(value, dict) and value.get("device", "").replace(":", "_") == name:
            collector = "network"
        if collector in chosen:
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
