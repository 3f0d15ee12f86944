"""Module family for git checkouts: the ``git`` module, driving the git CLI.

Standard library only; Python 3.8 syntax. Clones when ``dest`` holds no repository, otherwise
fetches and moves the checkout to ``version`` (branch, tag, full SHA or HEAD). Local
modifications stop the update unless ``force``. In check mode it asks ``git ls-remote`` what
the remote holds and reports ``before``/``after`` without touching ``dest``.
"""

import os
import re
import shutil

from . import _common as c

GIT_ARGS = {"repo", "name", "dest", "version", "force", "update", "clone", "depth", "remote",
            "bare", "accept_hostkey", "accept_newhostkey", "key_file", "ssh_opts", "recursive",
            "single_branch", "track_submodules", "umask", "executable", "refspec",
            "reference", "verify_commit", "archive", "archive_prefix", "separate_git_dir",
            "gpg_whitelist", "gpg_allowlist"}
SHA_RE = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def _git(ctx, git, argv, cwd=None, env=None, what=None):
    rc, out, err = ctx.run_command([git] + argv, cwd=cwd, env=env)
    if rc != 0 and what:
        c.fail(f"Failed to {what}: {out.strip()} {err.strip()}", rc=rc, stdout=out,
               stderr=err, cmd="git " + " ".join(argv))
    return rc, out.strip(), err


def _remote_sha(ctx, git, repo, version, env):
    """The commit ``version`` names on the remote (None when it is a SHA or not found)."""
    if SHA_RE.match(version):
        return version
    refs = ["HEAD"] if version == "HEAD" else [f"refs/heads/{version}",
                                                f"refs/tags/{version}^{{}}",
                                                f"refs/tags/{version}"]
    rc, out, err = _git(ctx, git, ["ls-remote", repo] + refs, env=env,
                        what=f"run git ls-remote on {repo}")
    found = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        found[ref] = sha
    for ref in refs:
        if ref in found:
            return found[ref]
    return None


@c.module
def git(ctx, args):
    """ansible.builtin.git."""
    c.check_unknown(args, GIT_ARGS, "git")
    c.refuse(args, "git", {"track_submodules": False, "umask": None, "archive_prefix": None,
                           "gpg_whitelist": [], "gpg_allowlist": []})
    repo = c.pop_arg(args, ("repo", "name"))
    dest = args.get("dest")
    c.require(dest=dest, repo=repo)
    for unsupported in ("bare", "archive", "separate_git_dir", "verify_commit"):
        if args.get(unsupported) not in (None, False, "no"):
            c.fail(f"git: '{unsupported}' is not supported by this runtime")
    gitbin = args.get("executable") or shutil.which("git")
    if not gitbin:
        c.fail("Failed to find required executable \"git\"; hint: install git on this host")
    dest = os.path.abspath(c.expand(dest))
    version = str(args.get("version") or "HEAD")
    force = c.boolean(args.get("force", False))
    update = c.boolean(args.get("update", True))
    clone = c.boolean(args.get("clone", True))
    remote = args.get("remote") or "origin"
    depth = args.get("depth")
    env = {"GIT_TERMINAL_PROMPT": "0"}
    ssh = []
    if args.get("key_file"):
        ssh += ["-i", c.expand(args["key_file"]), "-o", "IdentitiesOnly=yes"]
    if c.boolean(args.get("accept_hostkey", False)):
        ssh += ["-o", "StrictHostKeyChecking=no"]
    elif c.boolean(args.get("accept_newhostkey", False)):
        ssh += ["-o", "StrictHostKeyChecking=accept-new"]
    if args.get("ssh_opts"):
        ssh += str(args["ssh_opts"]).split()
    if ssh:
        env["GIT_SSH_COMMAND"] = "ssh " + " ".join(ssh)
    result = {"changed": False, "before": None, "after": None}
    gitdir = os.path.join(dest, ".git")

    if not os.path.exists(gitdir):
        if not clone:
            result["after"] = _remote_sha(ctx, gitbin, repo, version, env)
            return result
        if os.path.isdir(dest) and os.listdir(dest):
            c.fail(f"Destination path '{dest}' already exists and is not an empty directory.")
        result["changed"] = True
        if ctx.check_mode:
            result["after"] = _remote_sha(ctx, gitbin, repo, version, env)
            return result
        argv = ["clone", "--origin", remote]
        if depth:
            argv += ["--depth", str(depth)]
            if version != "HEAD" and not SHA_RE.match(version):
                argv += ["--branch", version]
        if c.boolean(args.get("single_branch", False)):
            argv.append("--single-branch")
        if args.get("reference"):
            argv += ["--reference", str(args["reference"])]
        parent = os.path.dirname(dest)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        _git(ctx, gitbin, argv + [repo, dest], env=env, what=f"clone {repo}")
        if version != "HEAD":
            _checkout(ctx, gitbin, dest, remote, version, env)
        if c.boolean(args.get("recursive", True)) and os.path.exists(
                os.path.join(dest, ".gitmodules")):
            _git(ctx, gitbin, ["submodule", "update", "--init", "--recursive"], cwd=dest,
                 env=env, what="update submodules")
        result["after"] = _git(ctx, gitbin, ["rev-parse", "HEAD"], cwd=dest)[1]
        return result

    rc, before, _ = _git(ctx, gitbin, ["rev-parse", "HEAD"], cwd=dest)
    result["before"] = before if rc == 0 else None
    rc, status, _ = _git(ctx, gitbin, ["status", "--porcelain", "--untracked-files=no"],
                         cwd=dest)
    local_mods = bool(status)
    if local_mods and not force and update:
        c.fail(f"Local modifications exist in the destination: {dest} (force=no).",
               **result)
    if not update:
        result["after"] = result["before"]
        return result
    rc, url, _ = _git(ctx, gitbin, ["remote", "get-url", remote], cwd=dest)
    if rc != 0 or url != repo:
        result["remote_url_changed"] = True
        if not ctx.check_mode:
            verb = "set-url" if rc == 0 else "add"
            _git(ctx, gitbin, ["remote", verb, remote, repo], cwd=dest,
                 what="set the remote url")
    if ctx.check_mode:
        target = _remote_sha(ctx, gitbin, repo, version, env)
        if target is None:
            c.fail(f"Failed to find version {version} in {repo}", **result)
        result["after"] = target
        result["changed"] = target != result["before"] or (local_mods and force)
        return result
    argv = ["fetch", "--tags", "--force", remote]
    if depth:
        argv += ["--depth", str(depth)]
    if args.get("refspec"):
        argv.append(str(args["refspec"]))
    _git(ctx, gitbin, argv, cwd=dest, env=env, what="download remote objects and refs")
    _git(ctx, gitbin, ["fetch", remote, f"+refs/heads/*:refs/remotes/{remote}/*"], cwd=dest,
         env=env, what="download remote branches")
    target = _resolve(ctx, gitbin, dest, remote, version)
    if target is None:
        c.fail(f"Failed to find version {version} in {repo}", **result)
    if target != result["before"] or (local_mods and force):
        if local_mods and force:
            _git(ctx, gitbin, ["reset", "--hard", "HEAD"], cwd=dest, what="discard changes")
        _checkout(ctx, gitbin, dest, remote, version, env)
        result["changed"] = True
    result["after"] = _git(ctx, gitbin, ["rev-parse", "HEAD"], cwd=dest)[1]
    return result


def _resolve(ctx, gitbin, dest, remote, version):
    if version == "HEAD":
        candidates = [f"refs/remotes/{remote}/HEAD"]
        rc, head, _ = _git(ctx, gitbin, ["ls-remote", remote, "HEAD"], cwd=dest)
        if rc == 0 and head:
            return head.split()[0]
    else:
        candidates = [f"refs/remotes/{remote}/{version}", f"refs/tags/{version}",
                      version]
    for ref in candidates:
        rc, sha, _ = _git(ctx, gitbin, ["rev-parse", "--verify", "-q", ref + "^{commit}"],
                          cwd=dest)
        if rc == 0 and sha:
            return sha
    return None


def _checkout(ctx, gitbin, dest, remote, version, env):
    rc, _, _ = _git(ctx, gitbin, ["rev-parse", "--verify", "-q",
                                  f"refs/remotes/{remote}/{version}"], cwd=dest)
    if version == "HEAD":
        target = _resolve(ctx, gitbin, dest, remote, version)
        _git(ctx, gitbin, ["reset", "--hard", target], cwd=dest, what="reset to HEAD")
    elif rc == 0:  # a branch: check it out and follow the remote
        _git(ctx, gitbin, ["checkout", "--force", "-B", version,
                           f"refs/remotes/{remote}/{version}"], cwd=dest,
             what=f"checkout branch {version}")
    else:
        _git(ctx, gitbin, ["checkout", "--force", version], cwd=dest,
             what=f"checkout {version}")


MODULES = {"git": git}
