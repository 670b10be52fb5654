// NetSentinel dashboard: polls the JSON API once a second while auto-refresh
// is on. Every string that came from a sender is inserted with textContent,
// never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  before: null,       // null: the newest page (live); else the id to page below
  pages: [],          // stack of `before` values for going back
  nextBefore: null,
  tick: 0,
  timer: null,
  detailId: null,
  range: "1h",        // the range picker's value: charts, talkers and table
};

/** The ranges the picker offers, as captions say them. */
const RANGE_WORDS = {
  "15m": "last 15 minutes",
  "1h": "last hour",
  "6h": "last 6 hours",
  "24h": "last 24 hours",
  "7d": "last 7 days",
};

/** A chart bucket's length in words: "minute", "5 minutes", "hour". */
function bucketWords(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : `${seconds / 3600} hours`;
  return seconds === 60 ? "minute" : `${seconds / 60} minutes`;
}

function fmt(n) {
  return Number(n).toLocaleString("en-US");
}

function setStatus(text, error) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!error);
}

// dashboard.read_token, when the server has one: asked once, kept for the tab.
let askedForReadToken = false;

function authHeaders() {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem("netsentinel-read-token")
    || sessionStorage.getItem("netsentinel-token");
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function getJSON(path) {
  let r = await fetch(path, { headers: authHeaders() });
  if (r.status === 401 && !askedForReadToken) {
    askedForReadToken = true;
    const token = window.prompt("This dashboard needs its read token (dashboard.read_token):");
    if (token) {
      sessionStorage.setItem("netsentinel-read-token", token);
      r = await fetch(path, { headers: authHeaders() });
    }
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function filterQuery() {
  const q = new URLSearchParams();
  const protocol = $("f-protocol").value;
  const client = $("f-client").value;
  if (protocol) q.set("protocol", protocol);
  if ($("f-anomalies").checked) q.set("anomalies", "true");
  if (client) q.set("client", client);
  const search = $("f-search").value.trim();
  if (search) {
    // What the search is: a port, a network, an address, else a sender.
    if (/^\d{1,5}$/.test(search)) q.set("port", search);
    else if (/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(search)) q.set("net", search);
    else if (/^\d{1,3}(\.\d{1,3}){3}$/.test(search) || /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$/.test(search)) q.set("host", search);
    else q.set("client", search);
  }
  q.set("range", state.range);
  q.set("limit", "50");
  if (state.before !== null) q.set("before", String(state.before));
  return q.toString();
}

function renderStats(s) {
  $("total").textContent = fmt(s.total_packets);
  $("anomalies").textContent = fmt(s.anomalies);
  $("rate").textContent = (100 * s.anomaly_rate).toFixed(2) + " %";
  $("pps").textContent = fmt(Math.round(s.packets_per_second));
  $("clients").textContent = fmt(s.clients_connected);
  $("queue").textContent = `${s.clients_waiting} waiting · queue ${fmt(s.queue_depth)}`;
  if (s.model) {
    $("model").textContent = `#${s.model.id}`;
    $("model-detail").textContent =
      `${fmt(s.model.rows)} rows · threshold ${s.model.threshold.toFixed(3)} · ` +
      new Date(s.model.trained_at).toLocaleTimeString();
  } else {
    $("model").textContent = "none yet";
    $("model-detail").textContent = `trains after ${fmt(s.min_train_packets)} packets`;
  }
}

/** Bytes as df -h says them. */
function bytesText(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** The storage card: size against the limit, what is kept, what was dropped. */
function renderStorage(d) {
  const size = $("storage");
  size.textContent = bytesText(d.database_bytes) +
    (d.max_database_bytes ? ` of ${bytesText(d.max_database_bytes)}` : "");
  size.classList.toggle("bad", !!d.over_limit);
  const parts = [];
  parts.push(d.retention_days ? `keeping ${d.retention_days} days` : "keeping everything");
  const n = d.partitions.length;
  if (n > 0) {
    parts.push(`${n} partition${n === 1 ? "" : "s"} from ${d.oldest.slice(0, 10)}`);
  }
  if (d.default_partition && d.default_partition.rows_estimate > 0) {
    parts.push(`${fmt(d.default_partition.rows_estimate)} undated (old replays)`);
  }
  if (d.drops_total > 0) {
    const last = d.drops[0];
    parts.push(`${fmt(d.drops_total)} dropped, last ${last.name} (${last.reason})`);
  }
  if (d.upgrade) {
    parts.push(`upgrading: ${fmt(d.upgrade.rows_left_estimate)} old rows left to move`);
  }
  if (d.over_limit) parts.push("over the size limit with nothing older to drop");
  $("storage-detail").textContent = parts.join(" · ");
}

function fillSelect(select, values) {
  const current = select.value;
  const have = new Set(Array.from(select.options).map((o) => o.value));
  for (const v of values) {
    if (!have.has(v)) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v;
      select.appendChild(o);
    }
  }
  select.value = current;
}

/** The sender filter: each sender with the server that stored its newest
 * packets (several servers may share one database). */
function fillSenders(select, senders) {
  const byValue = new Map(Array.from(select.options).map((o) => [o.value, o]));
  for (const s of senders) {
    let o = byValue.get(s.client);
    if (!o) {
      o = document.createElement("option");
      o.value = s.client;
      select.appendChild(o);
    }
    o.textContent = s.server ? `${s.client} · ${s.server}` : s.client;
    o.title = `${fmt(s.packets)} packets, last stored ${when(s.last_seen)}${s.server ? " by " + s.server : ""}`;
  }
}

// The rows the table shows now, for Export CSV.
let shownRows = [];

function csvCell(v) {
  const text = v == null ? "" : String(v);
  // Quote every cell; a leading = + - @ is prefixed so a spreadsheet does not run it.
  const safe = /^[=+\-@]/.test(text) ? "'" + text : text;
  return '"' + safe.replace(/"/g, '""') + '"';
}

function exportCSV() {
  const head = ["id", "timestamp", "client", "source_ip", "src_port", "dest_ip", "dst_port",
    "packet_size", "protocol", "score", "anomaly", "model_id"];
  const lines = [head.join(",")];
  for (const p of shownRows) lines.push(head.map((k) => csvCell(p[k])).join(","));
  const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `netsentinel-packets-${new Date().toISOString().replace(/[:.]/g, "-")}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function renderPackets(rows) {
  shownRows = rows;
  const body = $("packets").tBodies[0];
  const fresh = document.createDocumentFragment();
  for (const p of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(p.id);
    if (p.anomaly) tr.classList.add("anomaly");
    const cells = [
      when(p.timestamp),
      p.client,
      p.src_port == null ? p.source_ip : `${p.source_ip}:${p.src_port}`,
      p.dst_port == null ? p.dest_ip : `${p.dest_ip}:${p.dst_port}`,
      fmt(p.packet_size),
      p.protocol,
      p.score == null ? "–" : p.score.toFixed(3),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) {
        td.className = "client";
        td.title = text;
      }
      tr.appendChild(td);
    });
    const verdict = document.createElement("td");
    if (p.anomaly) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = "ANOMALY";
      verdict.appendChild(b);
    } else {
      verdict.textContent = p.score == null ? "unscored" : "normal";
      verdict.className = "muted";
    }
    tr.appendChild(verdict);
    tr.addEventListener("click", () => openDetail(p.id));
    fresh.appendChild(tr);
  }
  body.replaceChildren(fresh);
  $("empty").hidden = rows.length > 0;
  $("older").disabled = state.nextBefore === null;
  $("newest").disabled = state.before === null;
}

async function loadPackets() {
  const data = await getJSON("/api/packets?" + filterQuery());
  state.nextBefore = data.next_before;
  renderPackets(data.packets);
}

/** A time as the table shows it: the clock, with the date when not today. */
function when(iso) {
  const d = new Date(iso);
  const time = d.toLocaleTimeString([], { hour12: false });
  return d.toDateString() === new Date().toDateString()
    ? time
    : `${d.toLocaleDateString("en-CA")} ${time}`;
}

/** POST as this page (JSON, same origin), with the dashboard token if one was given. */
async function postJSON(path, body) {
  const send = () => {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const token = sessionStorage.getItem("netsentinel-token");
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  };
  let r = await send();
  if (r.status === 401) {
    const token = window.prompt("This server needs the dashboard token (dashboard.token):");
    if (token) {
      sessionStorage.setItem("netsentinel-token", token);
      r = await send();
    }
  }
  const out = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(out.error || `${r.status} ${r.statusText}`);
  return out;
}

async function incidentAction(inc, action) {
  if (action === "suppress") {
    const what = inc.role === "source"
      ? `from ${inc.host}${inc.protocol ? " over " + inc.protocol : ""}`
      : `against ${inc.host}${inc.server_port != null ? " port " + inc.server_port : ""}`;
    if (!window.confirm(`Treat incidents ${what} as normal from now on (a suppression rule)?`)) return;
  }
  try {
    await postJSON(`/api/incidents/${inc.id}/${action}`, {});
    await loadIncidents();
  } catch (e) {
    setStatus(`cannot ${action} incident ${inc.id}: ${e.message}`, true);
  }
}

function renderIncidents(data) {
  const c = data.counts || {};
  $("inc-counts").textContent =
    `${fmt(c.open || 0)} open · ${fmt(c.acknowledged || 0)} acknowledged · ` +
    `${fmt(c.suppressed || 0)} suppressed · ${fmt(c.closed || 0)} closed`;
  const list = $("inc-list");
  const fresh = document.createDocumentFragment();
  for (const inc of data.incidents) {
    const li = document.createElement("li");
    li.dataset.id = String(inc.id);
    li.className = inc.status;
    const what = document.createElement("div");
    what.className = "what";
    const host = document.createElement("a");
    host.className = "host hostlink";
    host.textContent = inc.host;
    host.title = "Open the host view";
    host.addEventListener("click", () => openHost(inc.host));
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = `${inc.role} · ${inc.kind}`;
    const span = document.createElement("span");
    span.className = "muted";
    span.textContent = `${when(inc.first_seen)} – ${when(inc.last_seen)} · ${fmt(inc.packets)} packets`;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = `#${inc.id} ${inc.status}`;
    what.append(host, kind, span, state);
    const summary = document.createElement("p");
    summary.className = "summary";
    summary.textContent = inc.summary;
    const actions = document.createElement("div");
    actions.className = "actions";
    const button = (label, action, quiet) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.action = action;
      if (quiet) b.className = "quiet";
      b.addEventListener("click", () => incidentAction(inc, action));
      actions.appendChild(b);
    };
    if (inc.status === "open") button("Acknowledge", "acknowledge");
    button("This is normal", "suppress", true);
    button("Close", "close", true);
    li.append(what, actions, summary);
    fresh.appendChild(li);
  }
  list.replaceChildren(fresh);
  $("inc-empty").hidden = data.incidents.length > 0;
}

async function loadIncidents() {
  const statuses = $("inc-acked").checked ? "open,acknowledged" : "open";
  renderIncidents(await getJSON(`/api/incidents?status=${statuses}&limit=20`));
}

/** Empties the <dl> `dl` and returns add(name, value), which appends one pair as text. */
function fieldList(dl) {
  dl.replaceChildren();
  return (k, v) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  };
}

/** The host view: what a host did lately, its peers, ports and incidents. */
async function openHost(addr) {
  try {
    const d = await getJSON(`/api/hosts/${encodeURIComponent(addr)}`);
    const s = d.summary;
    $("h-addr").textContent = d.host;
    const add = fieldList($("h-fields"));
    add("packets", `${fmt(s.sampled)} newest (${fmt(s.sent)} sent, ${fmt(s.received)} received)`);
    add("anomalies", fmt(s.anomalies));
    add("bytes", fmt(s.bytes));
    if (s.first_seen) add("seen", `${when(s.first_seen)} – ${when(s.last_seen)}`);
    add("protocols", s.protocols.map(([p, n]) => `${p} ${fmt(n)}`).join(", ") || "–");
    add("senders", s.senders.join(", ") || "–");
    const fill = (table, rows, link) => {
      const body = $(table).tBodies[0];
      body.replaceChildren();
      for (const [key, packets, anomalies] of rows) {
        const tr = document.createElement("tr");
        const k = document.createElement("td");
        if (link) {
          const a = document.createElement("a");
          a.className = "hostlink";
          a.textContent = String(key);
          a.addEventListener("click", () => openHost(String(key)));
          k.appendChild(a);
        } else {
          k.textContent = String(key);
        }
        const n = document.createElement("td");
        n.textContent = fmt(packets);
        const bad = document.createElement("td");
        bad.textContent = fmt(anomalies);
        if (anomalies > 0) bad.className = "bad";
        tr.append(k, n, bad);
        body.appendChild(tr);
      }
    };
    fill("h-peers", s.top_peers, true);
    fill("h-ports", s.top_ports, false);
    const list = $("h-incidents");
    list.replaceChildren();
    for (const inc of d.incidents) {
      const li = document.createElement("li");
      li.textContent = `#${inc.id} ${inc.status}: ${inc.summary}`;
      list.appendChild(li);
    }
    if (d.incidents.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "none";
      list.appendChild(li);
    }
    $("detail").hidden = true;
    $("host").hidden = false;
  } catch (e) {
    setStatus(`cannot load host ${addr}: ${e.message}`, true);
  }
}

/** Top talkers of the range: hosts by packets sent and received. */
function renderTalkers(d) {
  const body = $("talkers").tBodies[0];
  const fresh = document.createDocumentFragment();
  for (const t of d.talkers) {
    const tr = document.createElement("tr");
    const host = document.createElement("td");
    const a = document.createElement("a");
    a.className = "hostlink";
    a.textContent = t.host;
    a.title = `${t.host}: ${fmt(t.sent)} sent, ${fmt(t.packets - t.sent)} received — open the host view`;
    a.addEventListener("click", () => openHost(t.host));
    host.appendChild(a);
    const cells = [fmt(t.packets), NSCharts.compact(t.bytes), fmt(t.anomalies)].map((v) => {
      const td = document.createElement("td");
      td.textContent = v;
      return td;
    });
    if (t.anomalies > 0) cells[2].className = "bad";
    tr.append(host, ...cells);
    fresh.appendChild(tr);
  }
  body.replaceChildren(fresh);
  $("talkers-note").textContent = d.packets === 0
    ? "No packets in this range."
    : d.exact
      ? `All ${fmt(d.packets)} packets of the range.`
      : `Estimated from ${fmt(d.sampled)} of ${fmt(d.packets)} packets, drawn at random.`;
}

// When the API last answered, for the "unreachable" banner.
let lastGood = null;

async function refresh(full) {
  try {
    const stats = await getJSON("/api/stats");
    renderStats(stats);
    const range = state.range;
    const jobs = [loadIncidents(), getJSON(`/api/protocols?range=${range}`).then((d) => {
      if (range !== state.range) return;
      NSCharts.protocolChart($("protocol-chart"), d.protocols);
      fillSelect($("f-protocol"), d.protocols.map((p) => p.protocol));
    })];
    if (full || state.tick % 5 === 0) {
      jobs.push(getJSON(`/api/timeseries?range=${range}`).then((d) => {
        if (range !== state.range) return;
        $("time-caption").textContent = `Per ${bucketWords(d.bucket_seconds)}, ${RANGE_WORDS[range] || range}`;
        NSCharts.timeChart($("time-chart"), d);
      }));
      jobs.push(getJSON(`/api/talkers?range=${range}&limit=10`).then((d) => {
        if (range === state.range) renderTalkers(d);
      }));
      jobs.push(getJSON("/api/clients").then((d) => fillSenders($("f-client"), d.senders || [])));
      jobs.push(getJSON("/api/storage").then(renderStorage));
    }
    // Older pages stay put; the newest page follows the traffic.
    if (full || state.before === null) jobs.push(loadPackets());
    await Promise.all(jobs);
    lastGood = new Date();
    $("unreachable").hidden = true;
    setStatus("updated " + lastGood.toLocaleTimeString([], { hour12: false }));
  } catch (e) {
    setStatus("cannot reach the server: " + e.message, true);
    const banner = $("unreachable");
    banner.textContent = lastGood
      ? `Server unreachable — figures from ${lastGood.toLocaleTimeString([], { hour12: false })}`
      : "Server unreachable — no figures yet";
    banner.hidden = false;
  }
  state.tick += 1;
}

function schedule() {
  clearInterval(state.timer);
  state.timer = $("auto").checked ? setInterval(() => refresh(false), 1000) : null;
}

function restartPaging() {
  state.before = null;
  state.pages = [];
  refresh(true);
}

/** What each view of the detector looks at, as the panel says it. */
const VIEW_WORDS = {
  packet: "the packet itself (size, protocol, port)",
  sender: "how much its sender sends",
  client: "how the client of its conversation fans out",
  server: "how many clients its server draws",
  pair: "the rhythm of this source and destination",
};

/** TCP flag bits as their names, e.g. 0x12 → "SYN ACK". */
function tcpFlags(bits) {
  const names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
  const set = names.filter((_, i) => bits & (1 << i));
  return set.length ? set.join(" ") : "none";
}

async function openDetail(id) {
  state.detailId = id;
  try {
    const d = await getJSON(`/api/packets/${id}`);
    if (state.detailId !== id) return;
    const p = d.packet;
    $("d-id").textContent = `#${p.id}`;
    const add = fieldList($("d-fields"));
    add("time", new Date(p.timestamp).toISOString());
    add("client", p.client);
    add("source", p.src_port == null ? p.source_ip : `${p.source_ip}:${p.src_port}`);
    add("destination", p.dst_port == null ? p.dest_ip : `${p.dest_ip}:${p.dst_port}`);
    add("size", `${fmt(p.packet_size)} bytes`);
    add("protocol", p.protocol);
    if (p.tcp_flags != null) add("TCP flags", tcpFlags(p.tcp_flags));
    if (p.icmp_type != null) add("ICMP type", String(p.icmp_type));
    add("model", p.model_id == null ? "none" : `#${p.model_id}`);
    const bars = $("d-bars");
    bars.replaceChildren();
    const e = d.explanation;
    if (e) {
      const verdict = p.anomaly ? "flagged as an anomaly" : "judged normal";
      $("d-verdict").textContent =
        `Score ${e.score.toFixed(3)} vs threshold ${d.threshold.toFixed(3)}: ${verdict}, ` +
        `by ${VIEW_WORDS[e.view] || e.view}. What isolated it:`;
      for (const f of e.features) {
        const row = document.createElement("div");
        row.className = "share";
        const text = document.createElement("p");
        text.className = "reason";
        text.textContent = f.sentence;
        const track = document.createElement("div");
        track.className = "track";
        track.title = `${(100 * f.share).toFixed(0)}% of the isolating splits`;
        const fill = document.createElement("div");
        fill.className = "fill";
        fill.style.width = `${(100 * f.share).toFixed(1)}%`;
        track.appendChild(fill);
        const pct = document.createElement("span");
        pct.textContent = `${(100 * f.share).toFixed(0)}%`;
        row.append(text, track, pct);
        bars.appendChild(row);
      }
    } else {
      $("d-verdict").textContent = "No explanation.";
    }
    $("d-note").textContent = d.note || "";
    $("detail").hidden = false;
  } catch (e) {
    setStatus("cannot load packet: " + e.message, true);
  }
}

async function retrain() {
  if (!window.confirm("Retrain the model now on the newest stored packets?")) return;
  const button = $("retrain");
  const note = $("retrain-status");
  button.disabled = true;
  note.hidden = false;
  note.classList.remove("error");
  note.textContent = "Training a new model…";
  try {
    // JSON from this page: the server refuses cross-site form posts.
    const body = await postJSON("/api/retrain", {});
    const m = body.model;
    note.textContent = `New model #${m.id} trained on ${fmt(m.rows)} packets; threshold ${m.threshold.toFixed(3)}.`;
    refresh(true);
  } catch (e) {
    note.classList.add("error");
    note.textContent = "Retrain failed: " + e.message;
  } finally {
    button.disabled = false;
  }
}

/** Picks range `value` (when the picker offers it), in the picker and the address. */
function setRange(value) {
  if (!RANGE_WORDS[value]) return;
  state.range = value;
  $("f-range").value = value;
  for (const id of ["protocol-caption", "talkers-caption"]) $(id).textContent = RANGE_WORDS[value];
  history.replaceState(null, "", `#range=${value}`);
}

$("f-range").addEventListener("change", () => {
  setRange($("f-range").value);
  restartPaging();
});
$("auto").addEventListener("change", schedule);
$("inc-acked").addEventListener("change", () => loadIncidents().catch((e) => setStatus(e.message, true)));
$("retrain").addEventListener("click", retrain);
$("f-protocol").addEventListener("change", restartPaging);
$("f-anomalies").addEventListener("change", restartPaging);
$("f-client").addEventListener("change", restartPaging);
$("newest").addEventListener("click", restartPaging);
$("export").addEventListener("click", exportCSV);
let searchTimer = null;
$("f-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(restartPaging, 400);
});
$("older").addEventListener("click", () => {
  if (state.nextBefore === null) return;
  state.pages.push(state.before);
  state.before = state.nextBefore;
  loadPackets().catch((e) => setStatus(e.message, true));
});
$("host-close").addEventListener("click", () => {
  $("host").hidden = true;
});
$("detail-close").addEventListener("click", () => {
  $("detail").hidden = true;
  state.detailId = null;
});

setRange((/(?:^#|&)range=(\w+)/.exec(location.hash) || [])[1] || "1h");
refresh(true);
schedule();
