"""The web application: server-rendered pages over the history, a live feed, the rollback action.

Pages are Jinja2 templates with autoescaping on, so every value from hosts (output, errors,
host names) is escaped; the only script is ``static/ui.js`` (the CSP forbids inline script).
Reads go through ``HistoryReader`` (read-only connections); the actions are in actions.py
(rollback runs the command line's code in a worker thread; stop interrupts a running command).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..state import login_name
from .actions import resume_plan, rollback_preview, run_rollback, start_resume, stop, stop_target
from .data import Filters, HistoryReader
from .metrics import scrape
from .security import Guard, authorized, check_csrf, login_cookie, safe_next

HERE = Path(__file__).parent
POLL_SECONDS = 0.5  # how often the live feed looks at the history
KEEPALIVE_SECONDS = 15.0
PAGE_SIZE = 50  # deployments per page of the list
UNKNOWN_CONTEXT = ("the history does not say how deployment {0} reached its hosts (it was recorded by an earlier "
                   "version): roll it back on the command line, rustle-deploy --rollback {0} -i INVENTORY")


@dataclass(frozen=True)
class UiConfig:
    state_db: Path
    token: str | None = None
    config: str | None = None  # --config, handed to the actions' Session
    hosts: tuple[str, ...] | None = None  # Host header names accepted (security.Guard); None: any


def _short(value: Any, n: int = 12) -> str:
    return str(value)[:n] if value else "—"


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)) if ts else "—"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


def _unified(part: dict[str, Any]) -> str:
    """A diff part of a task result (Ansible's before/after shape) as unified diff text."""
    import difflib

    if part.get("prepared"):
        return str(part["prepared"])
    before, after = part.get("before", ""), part.get("after", "")
    if not isinstance(before, str) or not isinstance(after, str):
        before = json.dumps(before, indent=2, sort_keys=True, default=str) + "\n"
        after = json.dumps(after, indent=2, sort_keys=True, default=str) + "\n"
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        str(part.get("before_header") or "before"),
                                        str(part.get("after_header") or "after")))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(unified=_unified, short=_short, when=_when, seconds=_seconds,
                       pretty=lambda v: v if isinstance(v, str) else json.dumps(v, indent=2, sort_keys=True))
    return env


def _date(value: str, name: str, end: bool = False) -> float | None:
    """``YYYY-MM-DD`` (UTC; ``end``: the day after) or ``YYYY-MM-DDTHH:MM`` -> epoch seconds."""
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            parsed = time.strptime(value, fmt)
        except ValueError:
            continue
        seconds = float(calendar.timegm(parsed))
        return seconds + 86400 if end and fmt == "%Y-%m-%d" else seconds
    raise ValueError(f"{name}={value!r}: expected a date, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")


def _actor(request: Request, operator: Any) -> str:
    """Who asks for an action, as the history records it."""
    name = str(operator or "").strip()[:80]
    client = request.client.host if request.client else "?"
    return f"{name or 'anonymous'} (web UI from {client}, server user {login_name()})"


def _page_number(value: str) -> int:
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"page={value!r}: expected a page number, 1 or more")
    return int(value)


def create_app(config: UiConfig) -> Starlette:
    env = _environment()
    reader = HistoryReader(config.state_db)

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.update(csrf=request.state.csrf, state_db=str(config.state_db), token_required=config.token is not None,
                      path=request.url.path)
        return HTMLResponse(env.get_template(template).render(**values), status_code=status)

    def not_found(request: Request, what: str) -> HTMLResponse:
        return page(request, "error.html", 404, title="Not found", message=f"{what}: not in the history")

    def deployments(request: Request) -> Response:
        q = request.query_params
        try:
            filters = Filters(state=q.get("state", ""), plan=q.get("plan", ""), user=q.get("user", ""),
                              op=q.get("op", ""), since=_date(q.get("since", ""), "since"),
                              until=_date(q.get("until", ""), "until", end=True))
            number = _page_number(q.get("page", ""))
        except ValueError as exc:
            return page(request, "error.html", 400, title="Bad filter", message=str(exc))
        rows = reader.deployments(filters, limit=PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        kept = {k: v for k, v in q.items() if v and k != "page"}  # the filters, carried by the page links

        def link(n: int) -> str:
            return "/?" + urlencode({**kept, **({"page": n} if n > 1 else {})}) if kept or n > 1 else "/"

        return page(request, "deployments.html", rows=rows, q=kept, states=reader.states(),
                    running=any(r.status == "running" for r in rows), number=number,
                    first=(number - 1) * PAGE_SIZE + 1,
                    newer=link(number - 1) if number > 1 else None, older=link(number + 1) if more else None)

    def deployment(request: Request) -> Response:
        did = request.path_params["id"]
        dep = reader.deployment(did)
        if dep is None:
            return not_found(request, f"deployment {did}")
        hosts = reader.hosts(did)
        totals = {k: sum((h.recap or {}).get(k, 0) for h in hosts) for k in ("ok", "changed", "failed", "skipped")}
        return page(request, "deployment.html", d=dep, hosts=hosts, totals=totals, actions=reader.actions_on(did),
                    rollout=reader.rollout(did), orphaned=dep.status == "running" and reader.orphaned(did),
                    target=reader.deployment(dep.target_id) if dep.target_id else None)

    def host_tasks(request: Request) -> Response:
        did, host = request.path_params["id"], request.path_params["host"]
        dep = reader.deployment(did)
        row = next((h for h in reader.hosts(did) if h.host == host), None) if dep is not None else None
        if dep is None or row is None:
            return not_found(request, f"host {host} of deployment {did}")
        return page(request, "tasks.html", d=dep, h=row, tasks=reader.tasks(did, host))

    def host(request: Request) -> Response:
        name = request.path_params["host"]
        history = reader.host_history(name)
        if not history:
            return not_found(request, f"host {name}")
        current = next((h for d, h in history if h.status in ("activated", "unchanged", "rollback") and h.sha256), None)
        return page(request, "host.html", name=name, history=history, current=current, runs=reader.host_runs(name))

    def api_deployments(request: Request) -> Response:
        return JSONResponse([{"id": d.id, "op": d.op, "status": d.status, "plan": d.plan, "user": d.user,
                              "created_at": d.created_at, "finished_at": d.finished_at, "hosts": d.hosts,
                              "failed": d.failed} for d in reader.deployments()])

    def api_deployment(request: Request) -> Response:
        did = request.path_params["id"]
        live = reader.live(did)
        if live is None:
            return JSONResponse({"error": f"no deployment {did}"}, status_code=404)
        live["tasks"] = {h: [t.__dict__ for t in reader.tasks(did, h)] for h in (r["host"] for r in live["rows"])}
        return JSONResponse(live)

    async def events(request: Request) -> Response:
        did = request.path_params["id"]

        async def stream() -> Any:
            last, quiet = None, 0.0
            while True:
                snap = await asyncio.to_thread(reader.live, did)
                if snap is None:
                    yield "event: gone\ndata: {}\n\n"
                    return
                text = json.dumps(snap)
                if text != last:
                    yield f"event: snapshot\ndata: {text}\n\n"
                    last, quiet = text, 0.0
                elif quiet >= KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    quiet = 0.0
                if snap["status"] != "running":
                    yield "event: end\ndata: {}\n\n"
                    return
                await asyncio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    def rollback_confirm(request: Request) -> Response:
        did = request.path_params["id"]
        dep = reader.deployment(did)
        if dep is None or dep.op != "deploy":
            return not_found(request, f"deployment {did}")
        only = request.query_params.get("host") or None
        steps = rollback_preview(reader, did, only)
        if only and not steps:
            return not_found(request, f"host {only} of deployment {did}")
        return page(request, "rollback.html", d=dep, steps=steps, only=only, unknown=not dep.context,
                    can=any(s.refused is None for s in steps) and dep.status != "running" and bool(dep.context))

    async def rollback_do(request: Request) -> Response:
        why = await check_csrf(request)
        if why is not None:
            return page(request, "error.html", 403, title="Refused", message=why)
        did = request.path_params["id"]
        dep = reader.deployment(did)
        if dep is None or dep.op != "deploy":
            return not_found(request, f"deployment {did}")
        if dep.status == "running":
            return page(request, "error.html", 409, title="Still running",
                        message=f"deployment {did} is still running: roll it back once it has ended")
        if not dep.context:
            return page(request, "error.html", 409, title="Use the command line", message=UNKNOWN_CONTEXT.format(did))
        form = await request.form()
        only = form.get("host")
        actor = _actor(request, form.get("operator"))
        started = time.time()
        result = await asyncio.to_thread(run_rollback, did, dep.context, [str(only)] if only else None, actor,
                                         config.config)
        done = [a for a in reader.actions_on(did) if a.op == "rollback" and a.created_at >= started - 1]
        return page(request, "action_done.html", d=dep, result=result, action=done[-1] if done else None)

    def stop_confirm(request: Request) -> Response:
        did = request.path_params["id"]
        dep = reader.deployment(did)
        if dep is None:
            return not_found(request, f"deployment {did}")
        pid, what = stop_target(reader, did)
        return page(request, "stop.html", d=dep, pid=pid, what=what, done=None)

    async def stop_do(request: Request) -> Response:
        why = await check_csrf(request)
        if why is not None:
            return page(request, "error.html", 403, title="Refused", message=why)
        did = request.path_params["id"]
        dep = reader.deployment(did)
        if dep is None:
            return not_found(request, f"deployment {did}")
        form = await request.form()
        actor = _actor(request, form.get("operator"))
        sid, what = stop(config.state_db, reader, did, actor)
        return page(request, "stop.html", 200 if sid else 409, d=dep, pid=None, what=what, done=sid)

    def resume_confirm(request: Request) -> Response:
        did = request.path_params["id"]
        dep = reader.deployment(did)
        plan = resume_plan(reader, did)
        if dep is None or plan is None:
            return not_found(request, f"rollout of deployment {did}")
        return page(request, "resume.html", d=dep, plan=plan, done=None, what=None)

    async def resume_do(request: Request) -> Response:
        why = await check_csrf(request)
        if why is not None:
            return page(request, "error.html", 403, title="Refused", message=why)
        did = request.path_params["id"]
        dep = reader.deployment(did)
        plan = resume_plan(reader, did)
        if dep is None or plan is None:
            return not_found(request, f"rollout of deployment {did}")
        form = await request.form()
        actor = _actor(request, form.get("operator"))
        rid, what = await asyncio.to_thread(start_resume, config.state_db, reader, did, actor,
                                            config.state_db.parent / "ui-logs")
        return page(request, "resume.html", 200 if rid else 409, d=dep, plan=plan, done=rid, what=what)

    def login_form(request: Request) -> Response:
        if config.token is None or authorized(request, config.token):
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return page(request, "login.html", next=safe_next(request.query_params.get("next")), failed=False)

    async def login(request: Request) -> Response:
        why = await check_csrf(request)
        if why is not None:
            return page(request, "error.html", 403, title="Refused", message=why)
        form = await request.form()
        given = str(form.get("token") or "")
        target = safe_next(str(form.get("next") or "/"))
        if config.token is None:
            return RedirectResponse(target, status_code=303)
        import hmac

        if not hmac.compare_digest(given.encode(), config.token.encode()):
            return page(request, "login.html", 401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(**login_cookie(config.token, request.url.scheme == "https"))
        return response

    async def logout(request: Request) -> Response:
        why = await check_csrf(request)
        if why is not None:
            return page(request, "error.html", 403, title="Refused", message=why)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie("rustle_session", path="/")
        return response

    def metrics(request: Request) -> Response:
        return Response(scrape(reader), media_type="text/plain; version=0.0.4; charset=utf-8")

    routes = [
        Route("/", deployments),
        Route("/deployments/{id}", deployment),
        Route("/deployments/{id}/events", events),
        Route("/deployments/{id}/hosts/{host}", host_tasks),
        Route("/deployments/{id}/rollback", rollback_confirm, methods=["GET"]),
        Route("/deployments/{id}/rollback", rollback_do, methods=["POST"]),
        Route("/deployments/{id}/stop", stop_confirm, methods=["GET"]),
        Route("/deployments/{id}/stop", stop_do, methods=["POST"]),
        Route("/deployments/{id}/resume", resume_confirm, methods=["GET"]),
        Route("/deployments/{id}/resume", resume_do, methods=["POST"]),
        Route("/hosts/{host}", host),
        Route("/api/deployments", api_deployments),
        Route("/api/deployments/{id}", api_deployment),
        Route("/metrics", metrics),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, token=config.token, hosts=config.hosts)
    return app
