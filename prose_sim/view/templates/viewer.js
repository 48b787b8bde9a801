// prose_sim run viewer: the episode browser. No libraries, no network.
// The index (one array per episode, fields in ROW order) is parsed at load; an
// episode's details are in a gzipped, base64 chunk that is unpacked only when
// the episode is opened (DecompressionStream, built into the browser).
"use strict";
(function () {
  const ROW = ["id", "task", "framework", "method", "seed", "users", "status", "instances", "failed",
               "ppcm", "fpm", "levenshtein_norm", "calls", "parse_failures", "chunk", "search"];
  const started = performance.now();
  const index = JSON.parse(document.getElementById("data-index").textContent);
  const rows = index.rows.map((a) => Object.fromEntries(ROW.map((k, i) => [k, a[i]])));
  const byId = new Map(rows.map((r) => [r.id, r]));
  // instances several methods ran: [task, framework, seed, user, document id, members], each
  // member [its episode's row index, instance]; (episode, instance) -> its group's index
  const compare = index.compare;
  const compareOf = new Map();
  compare.forEach((g, n) => { for (const [r, inst] of g[5]) compareOf.set(rows[r].id + "\u0000" + inst, n); });
  let documents = null; // parsed on first use
  const DOC_RE = new RegExp(index.doc_open + "(\\d+)" + index.doc_close, "g");
  const chunkCache = new Map();
  const ROW_H = 40;
  let shown = rows;
  let selected = null;

  // --- tiny DOM helper: text is always set as text, never parsed as HTML -----------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));

  // --- tabs ------------------------------------------------------------------------
  function showTab(name) {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.tab === name);
    document.getElementById("tab-summary").hidden = name !== "summary";
    document.getElementById("tab-episodes").hidden = name !== "episodes";
    if (name === "episodes") drawList();
  }

  // --- filters and the (virtual) list ------------------------------------------------
  const filters = {
    task: document.getElementById("f-task"),
    framework: document.getElementById("f-framework"),
    method: document.getElementById("f-method"),
    user: document.getElementById("f-user"),
    seed: document.getElementById("f-seed"),
  };
  const search = document.getElementById("search");
  const list = document.getElementById("list");
  const space = document.getElementById("list-space");

  function fillSelect(select, label, values) {
    select.append(h("option", { value: "" }, `all ${label}s (${values.length})`));
    for (const v of values) select.append(h("option", { value: String(v) }, String(v)));
  }
  const uniq = (xs) => [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  fillSelect(filters.task, "task", uniq(rows.map((r) => r.task)));
  fillSelect(filters.framework, "framework", uniq(rows.map((r) => r.framework)));
  fillSelect(filters.method, "method", uniq(rows.map((r) => r.method)));
  fillSelect(filters.user, "user", uniq(rows.flatMap((r) => r.users)));
  fillSelect(filters.seed, "seed", uniq(rows.map((r) => r.seed)).sort((a, b) => a - b));

  function applyFilters() {
    const f = Object.fromEntries(Object.entries(filters).map(([k, el]) => [k, el.value]));
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    shown = rows.filter((r) =>
      (!f.task || r.task === f.task) &&
      (!f.framework || r.framework === f.framework) &&
      (!f.method || r.method === f.method) &&
      (!f.user || r.users.includes(f.user)) &&
      (!f.seed || String(r.seed) === f.seed) &&
      words.every((w) => r.search.includes(w)));
    document.getElementById("count").textContent =
      `${shown.length.toLocaleString()} of ${rows.length.toLocaleString()} episodes`;
    list.scrollTop = 0;
    drawList();
  }
  for (const el of Object.values(filters)) el.addEventListener("change", applyFilters);
  let typing = null;
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(applyFilters, 120); });

  function drawList() {
    space.style.height = shown.length * ROW_H + "px";
    const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
    const last = Math.min(shown.length, first + Math.ceil((list.clientHeight || 800) / ROW_H) + 10);
    for (const el of [...list.querySelectorAll(".row")]) el.remove();
    for (let i = first; i < last; i++) {
      const r = shown[i];
      const users = r.users.length > 1 ? `${r.users.length} users` : r.users[0];
      const row = h("div", {
          class: "row" + (r.id === selected ? " selected" : "") + (r.status !== "completed" || r.failed ? " failed" : ""),
          style: `top:${i * ROW_H}px`, "data-id": r.id, title: r.id,
          onclick: () => { location.hash = "#e=" + encodeURIComponent(r.id); },
        },
        h("span", { class: "m" }, r.method, h("span", { class: "task" }, `${r.task} · ${r.framework}`)),
        h("span", {}, users), h("span", {}, r.seed),
        h("span", { class: "num" }, fmt(r.ppcm, 2)), h("span", { class: "num" }, r.calls));
      list.append(row);
    }
  }
  list.addEventListener("scroll", () => requestAnimationFrame(drawList));
  window.addEventListener("resize", () => requestAnimationFrame(drawList));

  // --- episode details, unpacked on demand ------------------------------------------
  async function chunk(n) {
    if (!chunkCache.has(n)) {
      const b64 = document.getElementById("chunk-" + n).textContent.trim();
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      const text = await new Response(stream).text();
      if (chunkCache.size > 8) chunkCache.delete(chunkCache.keys().next().value);
      chunkCache.set(n, JSON.parse(text));
    }
    return chunkCache.get(n);
  }
  function docs() {
    if (documents === null) documents = JSON.parse(document.getElementById("data-documents").textContent);
    return documents;
  }
  const words = (t) => (t.trim() ? t.trim().split(/\s+/).length : 0);

  // a prompt: text with each document reference shown as a folded document
  function withDocuments(text) {
    const parts = [];
    let last = 0;
    for (const m of text.matchAll(DOC_RE)) {
      parts.push(text.slice(last, m.index));
      const doc = docs()[Number(m[1])];
      parts.push(h("details", { class: "doc" }, h("summary", {}, h("span", { class: "docref" }, `document (${words(doc)} words)`)),
        h("div", { class: "text" }, doc)));
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last));
    return parts;
  }

  function diffSides(segments) {
    const draft = h("div", { class: "text diff-draft" }, h("h4", {}, "the writer's draft"));
    const user = h("div", { class: "text diff-user" }, h("h4", {}, "the user's text"));
    for (const [op, text] of segments) {
      if (op <= 0) draft.append(op < 0 ? h("del", {}, text) : document.createTextNode(text));
      if (op >= 0) user.append(op > 0 ? h("ins", {}, text) : document.createTextNode(text));
    }
    return h("div", { class: "sides" }, draft, user);
  }

  function scoresText(scores) {
    const mean = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : NaN;
    return `[${scores.map((s) => (s > 0 ? "+" + s : s)).join(", ")}] mean ${fmt(mean, 2)}`;
  }

  function preferenceList(items, cls) {
    return items.length ? h("ul", {}, items.map((c) => h("li", { class: cls || null }, c))) : h("p", { class: "muted" }, "(none)");
  }

  function timeline(ep) {
    const table = h("table", { class: "grid timeline" },
      h("tr", {}, h("th", {}, "#"), h("th", {}, "user"), h("th", {}, "drafted with"),
        h("th", {}, "kept (validation scores)"), h("th", {}, "dropped (validation scores)"), h("th", {}, "threshold")));
    for (const inst of ep.instances) {
      const kept = inst.components.map((c) => h("li", { class: "kept" }, c,
        inst.validation[c] ? h("span", { class: "score" }, " " + scoresText(inst.validation[c])) : null));
      const dropped = Object.keys(inst.validation).filter((c) => !inst.components.includes(c)).map((c) =>
        h("li", {}, h("span", { class: "dropped" }, c), h("span", { class: "score" }, " " + scoresText(inst.validation[c]))));
      table.append(h("tr", {},
        h("td", {}, inst.instance), h("td", {}, inst.user),
        h("td", {}, inst.used || h("span", { class: "muted" }, "(none)")),
        h("td", {}, kept.length ? h("ul", {}, kept) : h("span", { class: "muted" }, inst.inferred || "(none)")),
        h("td", {}, dropped.length ? h("ul", {}, dropped) : h("span", { class: "muted" }, "–")),
        h("td", { class: "num" }, inst.threshold === null ? "–" : fmt(inst.threshold, 2))));
    }
    const validated = ep.instances.some((i) => Object.keys(i.validation).length);
    const asked = ep.instances.some((i) => i.calls.some((c) => c.purpose === "validate"));
    const note = asked && !validated
      ? h("p", { class: "muted" }, "This log has no per-component validation scores (a log from before they were recorded); the validate calls are listed under each instance.")
      : null;
    return h("section", { class: "block" }, h("h3", {}, "Preferences over time",
      h("span", { class: "muted" }, "what each demonstration kept or dropped, and the verdict scores that decided it")), table, note);
  }

  function verdictTable(inst) {
    if (!inst.verdicts.length) return h("p", { class: "muted" }, "No judge verdicts (judge off, or the instance did not get that far).");
    const t = h("table", { class: "grid verdicts" }, h("tr", {}, h("th", {}, "metric"), h("th", {}, "component"),
      h("th", {}, "score"), h("th", {}, "parsed"), h("th", {}, "checker"), h("th", {}, "checked"), h("th", {}, "question")));
    for (const v of inst.verdicts) {
      t.append(h("tr", {}, h("td", {}, v.metric), h("td", {}, v.component || (v.metric === "fpm" ? "(all components)" : "(inferred vs true)")),
        h("td", { class: "num" }, fmt(v.score, 0)),
        h("td", { class: v.parsed ? null : "bad-cell" }, v.parsed ? "yes" : "NO (scored 0)"),
        h("td", {}, v.checker || "–"), h("td", {}, v.checked === null ? "–" : v.checked ? "passes" : "fails"),
        h("td", {}, v.call ? h("a", { class: "calllink", onclick: () => openCall(v.call) }, "prompt ↓") : "–")));
    }
    return t;
  }

  function metricsTable(inst) {
    const keys = Object.keys(inst.metrics).sort();
    if (!keys.length) return h("p", { class: "muted" }, "No metrics recorded.");
    return h("table", { class: "grid metrics" }, h("tr", {}, keys.map((k) => h("th", {}, k))),
      h("tr", {}, keys.map((k) => h("td", { class: "num" }, fmt(inst.metrics[k], 3)))));
  }

  function callView(call, n) {
    const failed = call.answer === null;
    const summary = h("summary", {},
      h("span", { class: "badge" }, "#" + n), h("span", { class: "role" }, `${call.role}/${call.purpose}`),
      h("span", { class: "muted" }, call.model),
      h("span", {}, `${call.input_tokens.toLocaleString()} → ${call.output_tokens.toLocaleString()} tokens`),
      h("span", {}, `${fmt(call.latency_s, 2)} s`),
      call.cached ? h("span", { class: "badge cached" }, "cached") : null,
      call.attempts > 1 ? h("span", { class: "badge" }, `${call.attempts} attempts`) : null,
      call.parse_failed ? h("span", { class: "badge bad" }, "PARSE FAILED") : null,
      failed ? h("span", { class: "badge bad" }, call.error ? "FAILED" : "NO ANSWER") : null,
      h("span", { class: "muted" }, call.id));
    const body = h("div", { class: "call-body" });
    for (const [role, content] of call.messages) {
      body.append(h("div", { class: "msg-role" }, role), h("pre", { class: "msg prompt" }, withDocuments(content)));
    }
    body.append(h("div", { class: "msg-role" }, "answer"),
      failed ? h("pre", { class: "msg answer" }, call.error || "(no answer in the log)") : h("pre", { class: "msg answer" }, call.answer));
    return h("details", { class: "call" + (call.parse_failed ? " parse-failed" : "") + (failed ? " failed" : ""), id: "call-" + call.id }, summary, body);
  }

  function openCall(id) {
    const el = document.getElementById("call-" + id);
    if (!el) return;
    el.open = true;
    el.scrollIntoView({ block: "start" });
  }

  function instanceView(ep, inst) {
    const doc = docs()[inst.document];
    const block = h("section", { class: "block instance", id: "instance-" + inst.instance },
      h("h3", {}, `Instance ${inst.instance}`, h("span", { class: "muted" }, `user ${inst.user} · document ${inst.document_id}`),
        h("span", { class: "chip " + (inst.status === "ok" ? "ok" : "bad") }, inst.status),
        inst.accepted ? h("span", { class: "chip" }, "user accepted the draft") : null,
        compareOf.has(ep.id + "\u0000" + inst.instance)
          ? h("a", { class: "calllink compare-link", href: "#c=" + compareOf.get(ep.id + "\u0000" + inst.instance) },
              `every method on this document (${compare[compareOf.get(ep.id + "\u0000" + inst.instance)][5].length}) ↗`)
          : null),
      h("details", { class: "doc" }, h("summary", {}, h("span", { class: "docref" }, `the document (${words(doc)} words)`)), h("div", { class: "text" }, doc)));
    if (inst.problems.length) block.append(h("ul", { class: "problems" }, inst.problems.map((p) => h("li", {}, p))));
    if (inst.has_user_text) {
      block.append(h("div", { class: "legend muted" }, "word diff: ", h("del", {}, "only in the draft"), " ", h("ins", {}, "only in the user's text")));
      block.append(diffSides(inst.diff));
    } else {
      block.append(h("p", { class: "muted" }, inst.has_draft ? "The user's text was not produced." : "No draft was produced."));
    }
    const inferred = inst.components.length ? inst.components : (inst.inferred ? [inst.inferred] : []);
    block.append(h("div", { class: "prefs" },
      h("div", { class: "col" }, h("h4", {}, "preferences used for the draft"), preferenceList(inst.used ? [inst.used] : []),
        inst.examples ? h("p", { class: "muted" }, `with ${inst.examples} examples (${inst.retrieved.join(", ")})`) : null),
      h("div", { class: "col" }, h("h4", {}, "preferences inferred"), preferenceList(inferred, "kept")),
      h("div", { class: "col" }, h("h4", {}, "true preferences"), preferenceList(inst.true))));
    block.append(h("h4", {}, "judge verdicts"), verdictTable(inst));
    block.append(h("h4", {}, "metrics"), metricsTable(inst));
    const failedParses = inst.calls.filter((c) => c.parse_failed).length;
    block.append(h("h4", {}, `model calls (${inst.calls.length}, in request order` + (failedParses ? `; ${failedParses} unparseable` : "") + ")"),
      h("div", { class: "calls" }, inst.calls.map((c, i) => callView(c, i + 1))));
    return block;
  }

  async function openEpisode(id) {
    const row = byId.get(id);
    const detail = document.getElementById("detail");
    if (!row) { detail.replaceChildren(h("p", { class: "muted" }, `No episode ${id} in this run.`)); return; }
    selected = id;
    drawList();
    detail.replaceChildren(h("p", { class: "muted" }, "unpacking…"));
    let ep;
    try {
      ep = (await chunk(row.chunk))[id];
    } catch (err) {
      detail.replaceChildren(h("p", { class: "problems" }, `Cannot unpack this episode: ${err} (a browser without DecompressionStream?)`));
      return;
    }
    const models = Object.entries(ep.models).map(([role, m]) => h("span", { class: "chip" }, `${role}: ${m}`));
    detail.replaceChildren(
      h("div", { class: "ep-head" }, h("h2", {}, ep.id),
        h("div", { class: "chips" }, h("span", { class: "chip" }, `${ep.task} · ${ep.framework}`), h("span", { class: "chip" }, `method ${ep.method}`),
          h("span", { class: "chip" }, `seed ${ep.seed}`), h("span", { class: "chip" }, `users ${ep.users.join(", ")}`),
          h("span", { class: "chip " + (ep.status === "completed" ? "ok" : "bad") }, ep.status), models),
        ep.error ? h("p", { class: "problems" }, ep.error) : null,
        h("div", { class: "chips" }, h("span", { class: "chip" }, `${index.labels.ppcm} ${fmt(row.ppcm)}`), h("span", { class: "chip" }, `${index.labels.fpm} ${fmt(row.fpm)}`),
          h("span", { class: "chip" }, `${index.labels.levenshtein_norm} ${fmt(row.levenshtein_norm)}`), h("span", { class: "chip" }, `${row.calls} model calls`),
          row.parse_failures ? h("span", { class: "chip bad" }, `${row.parse_failures} unparseable answers`) : null)),
      timeline(ep),
      ...ep.instances.map((inst) => instanceView(ep, inst)));
    detail.scrollTop = 0;
    document.body.dataset.openEpisode = id;
  }

  // --- one instance, every method's draft side by side ------------------------------
  const segmentsText = (diff, keep) => diff.filter(([op]) => keep(op)).map(([, t]) => t).join("");

  // the metrics any of the compared instances has, each column showing the same rows
  function compareMetrics(inst, names) {
    const known = index.metric_labels.filter(([name]) => names.has(name));
    if (!known.length) return h("p", { class: "muted" }, "No metrics recorded.");
    const arrow = { higher: " ↑", lower: " ↓" };
    return h("table", { class: "grid metrics" }, known.map(([name, label, direction]) =>
      h("tr", {}, h("th", {}, label + (arrow[direction] || "")), h("td", { class: "num" }, fmt(inst.metrics[name], 3)))));
  }

  function compareVerdicts(inst) {
    if (!inst.verdicts.length) return h("p", { class: "muted" }, "No judge verdicts.");
    return h("table", { class: "grid verdicts" }, h("tr", {}, h("th", {}, "metric"), h("th", {}, "component"), h("th", {}, "score")),
      inst.verdicts.map((v) => h("tr", {}, h("td", {}, v.metric),
        h("td", {}, v.component || (v.metric === "fpm" ? "(all components)" : "(inferred vs true)")),
        h("td", { class: "num" + (v.parsed ? "" : " bad-cell") }, v.parsed ? fmt(v.score, 0) : fmt(v.score, 0) + " (unparsed)"))));
  }

  function compareColumn(method, id, inst, names) {
    if (!inst) return h("div", { class: "compare-col" }, h("h3", {}, method), h("p", { class: "problems" }, "This instance is not in the episode."));
    const draft = inst.has_user_text ? segmentsText(inst.diff, (op) => op <= 0)
      : inst.has_draft ? "(the draft is kept with the user's text, which was not produced)" : "(no draft)";
    return h("div", { class: "compare-col", "data-method": method },
      h("h3", {}, method, h("span", { class: "chip " + (inst.status === "ok" ? "ok" : "bad") }, inst.status)),
      h("a", { class: "calllink", href: "#e=" + encodeURIComponent(id) }, "its episode ↗"),
      h("h4", {}, "the writer's draft"), h("div", { class: "text compare-draft" }, draft),
      h("h4", {}, "metrics"), compareMetrics(inst, names),
      h("h4", {}, "judge verdicts"), compareVerdicts(inst),
      h("h4", {}, "preferences used for the draft"), preferenceList(inst.used ? [inst.used] : []),
      inst.has_user_text ? h("details", { class: "doc" }, h("summary", {}, "the user's text for this draft"),
        h("div", { class: "text" }, segmentsText(inst.diff, (op) => op >= 0))) : null);
  }

  async function openCompare(n) {
    const detail = document.getElementById("detail");
    const group = compare[n];
    if (!group) { detail.replaceChildren(h("p", { class: "muted" }, `No compared instance ${n} in this run.`)); return; }
    const [task, framework, seed, user, documentId, members] = group;
    selected = null;
    drawList();
    detail.replaceChildren(h("p", { class: "muted" }, "unpacking…"));
    let instances;
    try {
      instances = await Promise.all(members.map(async ([r, number]) =>
        ((await chunk(rows[r].chunk))[rows[r].id].instances || []).find((i) => i.instance === number)));
    } catch (err) {
      detail.replaceChildren(h("p", { class: "problems" }, `Cannot unpack these episodes: ${err} (a browser without DecompressionStream?)`));
      return;
    }
    const first = instances.find(Boolean);
    const names = new Set(instances.filter(Boolean).flatMap((i) => Object.keys(i.metrics)));
    const doc = first ? docs()[first.document] : "";
    detail.replaceChildren(
      h("div", { class: "ep-head" }, h("h2", {}, `${members.length} methods on one document`),
        h("div", { class: "chips" }, h("span", { class: "chip" }, `${task} · ${framework}`), h("span", { class: "chip" }, `seed ${seed}`),
          h("span", { class: "chip" }, `user ${user}`), h("span", { class: "chip" }, `document ${documentId}`))),
      h("details", { class: "doc" }, h("summary", {}, h("span", { class: "docref" }, `the document (${words(doc)} words)`)), h("div", { class: "text" }, doc)),
      h("section", { class: "block compare", "data-methods": String(members.length) },
        members.map(([r], i) => compareColumn(rows[r].method, rows[r].id, instances[i], names))));
    detail.scrollTop = 0;
    document.body.dataset.openCompare = String(n);
  }

  // --- navigation: #summary, #episodes, #e=<episode id>, #c=<compared instance> ------
  function route() {
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash.startsWith("e=")) { showTab("episodes"); return openEpisode(hash.slice(2)); }
    if (hash.startsWith("c=")) { showTab("episodes"); return openCompare(Number(hash.slice(2))); }
    showTab(hash === "episodes" ? "episodes" : "summary");
    return Promise.resolve();
  }
  window.addEventListener("hashchange", route);
  applyFilters();
  route().then(() => {
    document.body.dataset.readyMs = (performance.now() - started).toFixed(1);
    document.body.dataset.ready = "1";
  });

  // for tests and measurements: the page's own timings of a filter and of opening an episode
  window.proseSimViewer = {
    rows: () => rows.length,
    shown: () => shown.length,
    async measure(query, method) {
      const t0 = performance.now();
      search.value = query; applyFilters();
      const t1 = performance.now();
      filters.method.value = method; applyFilters();
      const t2 = performance.now();
      search.value = ""; filters.method.value = ""; applyFilters();
      const t3 = performance.now();
      const id = rows[rows.length - 1].id;
      await openEpisode(id);
      const t4 = performance.now();
      return { search_ms: t1 - t0, method_filter_ms: t2 - t1, clear_ms: t3 - t2, open_episode_ms: t4 - t3 };
    },
  };
})();
