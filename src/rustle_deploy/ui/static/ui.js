// rustle-deploy web UI: the live view of a running deployment (server-sent events), the
// filters' auto-submit and the list's refresh. Values go into the page as text, never as HTML.
"use strict";

function text(el, value) {
  if (el) { el.textContent = value === null || value === undefined || value === "" ? "\u2014" : String(value); }
}

function badge(cell, status) {
  cell.textContent = "";
  var span = document.createElement("span");
  span.className = "badge " + status;
  span.textContent = status;
  cell.appendChild(span);
}

function seconds(value) {
  if (value === null || value === undefined) { return "\u2014"; }
  if (value < 60) { return value.toFixed(1) + " s"; }
  return Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
}

function hostRow(tbody, row, deploymentPath) {
  var tr = null;
  for (var i = 0; i < tbody.rows.length; i++) {
    if (tbody.rows[i].getAttribute("data-host") === row.host) { tr = tbody.rows[i]; break; }
  }
  if (tr === null) {
    tr = document.createElement("tr");
    tr.setAttribute("data-host", row.host);
    ["name", "c-status", "c-duration", "c-before", "c-after", "c-recap", "c-error", "c-links"].forEach(function (c) {
      var td = document.createElement("td");
      td.className = c;
      tr.appendChild(td);
    });
    var link = document.createElement("a");
    link.href = "/hosts/" + encodeURIComponent(row.host);
    link.textContent = row.host;
    tr.cells[0].appendChild(link);
    var tasks = document.createElement("a");
    tasks.href = deploymentPath + "/hosts/" + encodeURIComponent(row.host);
    tasks.textContent = "tasks";
    tr.cells[7].appendChild(tasks);
    tbody.appendChild(tr);
  }
  tr.className = "state-" + row.status;
  badge(tr.cells[1], row.status);
  text(tr.cells[2], seconds(row.duration));
  text(tr.cells[3], row.before);
  text(tr.cells[4], row.after);
  var r = row.recap;
  var recent = (row.recent || []).map(function (t) { return " \u00b7 \u201c" + t.task + "\u201d " + t.status; }).join("");
  text(tr.cells[5], r ? "ok=" + r.ok + " changed=" + r.changed + " failed=" + r.failed + " skipped=" + r.skipped
    : (row.task ? "running \u201c" + row.task + "\u201d (" + row.tasks_done + " done)" + recent : ""));
  var err = row.error || "";
  if (row.failed_tasks && row.failed_tasks.length) {
    err += (err ? " " : "") + row.failed_tasks.map(function (t) { return "task \u201c" + t + "\u201d failed"; }).join("; ");
  }
  tr.cells[6].textContent = err;
}

function live(url) {
  var tbody = document.querySelector("#hosts tbody");
  var deploymentPath = url.replace(/\/events$/, "");
  var source = new EventSource(url);
  source.addEventListener("snapshot", function (ev) {
    var snap = JSON.parse(ev.data);
    var status = document.getElementById("status");
    status.className = "badge " + snap.status;
    status.textContent = snap.status;
    text(document.getElementById("count-hosts"), snap.hosts);
    text(document.getElementById("count-failed"), snap.failed);
    text(document.getElementById("count-pending"), snap.pending);
    text(document.getElementById("duration"), seconds(snap.duration));
    snap.rows.forEach(function (row) { hostRow(tbody, row, deploymentPath); });
    document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || "0") + 1));
  });
  source.addEventListener("end", function () {
    source.close();
    text(document.getElementById("live-note"), "finished");
    document.body.setAttribute("data-live-ended", "1");
  });
  source.addEventListener("gone", function () { source.close(); });
}

document.addEventListener("DOMContentLoaded", function () {
  var url = document.body.getAttribute("data-live");
  if (url) { live(url); }
  var refresh = document.body.getAttribute("data-refresh");
  if (refresh) { window.setTimeout(function () { window.location.reload(); }, Number(refresh) * 1000); }
  document.querySelectorAll("select.autosubmit").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
});
