// The dashboard's script: draws each series as an SVG line chart with
// gridlines, units and a hover read-out, draws the overview charts that
// compare the busiest hosts, keeps the charts and the status page live,
// shows one warning for the page when servers fail, and switches the time
// range in place. Names of hosts and metrics only ever go into the page as
// text (textContent, setAttribute, URLSearchParams), never as markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 5000;
  // The status page costs no command to a server: it polls more often, so
  // that a server that dies shows within seconds.
  const STATUS_POLL_MS = 2000;
  // An overview chart keeps its hosts, and their colours, this long before
  // it asks for the busiest again.
  const RERANK_MS = 60000;
  const MAX_POINTS = 1000;
  const OVERVIEW_POINTS = 400;
  const COLOURS = 10; // classes s0 … s9 of the stylesheet

  // HIDDEN matches what shown marks: the characters that show nothing and
  // that names may hold (Unicode's other default-ignorable ones and the
  // blank braille pattern), and a variation selector at the start, or
  // after an ASCII character, another selector or one of those, as
  // shown.go's shown does for the page.
  const IGNORABLE = "\\u034F\\u115F\\u1160\\u17B4\\u17B5\\u2065\\u2800\\u3164\\uFFA0\\uFFF0-\\uFFF8" +
    "\\u{E0000}\\u{E0002}-\\u{E001F}\\u{E0080}-\\u{E00FF}\\u{E01F0}-\\u{E0FFF}";
  const SELECTORS = "\\u180B-\\u180D\\u180F\\uFE00-\\uFE0F\\u{E0100}-\\u{E01EF}";
  const HIDDEN = new RegExp("[" + IGNORABLE + "]|(?<![^\\x00-\\x7F" + IGNORABLE + SELECTORS + "])[" + SELECTORS + "]", "gu");

  // shown writes each such character of a text as "⟨U+XXXX⟩", so that two
  // names that differ by it do not look the same.
  function shown(text) {
    return String(text).replace(HIDDEN, (c) => "⟨U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "⟩");
  }

  function svgEl(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = shown(text);
    return e;
  }

  function el(name, cls, text) {
    const e = document.createElement(name);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = shown(text);
    return e;
  }

  function pad2(n) { return String(n).padStart(2, "0"); }

  function setText(e, text) {
    if (!e) return;
    e.textContent = shown(text);
    e.hidden = text === "";
  }

  // ---- Units -------------------------------------------------------------

  // The prefixes of each kind of unit, smallest first: a factor of the base
  // unit and its suffix.
  const LADDERS = {
    bytes: [[1, " B"], [1024, " KiB"], [1048576, " MiB"], [1073741824, " GiB"], [1099511627776, " TiB"], [1125899906842624, " PiB"]],
    seconds: [[1e-9, " ns"], [1e-6, " µs"], [1e-3, " ms"], [1, " s"], [60, " min"], [3600, " h"]],
    percent: [[1, "%"]],
    "bits/s": [[1, " bit/s"], [1e3, " kbit/s"], [1e6, " Mbit/s"], [1e9, " Gbit/s"], [1e12, " Tbit/s"]],
    "": [[1, ""], [1e3, "k"], [1e6, "M"], [1e9, "G"], [1e12, "T"]],
  };

  // unitOf reads the unit the server gave a chart: its kind, and the factor
  // from a value to the kind's base unit.
  function unitOf(svg) {
    const kind = svg.dataset.unit || "";
    return { kind: LADDERS[kind] ? kind : "", scale: Number(svg.dataset.scale) || 1 };
  }

  // prefixFor picks the prefix to show values up to maxAbs (in the metric's
  // own unit) with: the largest not above them.
  function prefixFor(unit, maxAbs) {
    const ladder = LADDERS[unit.kind];
    const base = maxAbs * unit.scale;
    let best = ladder[0];
    for (const step of ladder) {
      if (base >= step[0]) best = step;
    }
    if (unit.kind === "seconds" && base === 0) best = ladder[3];
    return { div: best[0] / unit.scale, suffix: best[1] };
  }

  function trimNumber(x, digits) {
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e15 || a < 1e-4) return x.toExponential(2);
    return String(Number(x.toPrecision(digits)));
  }

  // formatValue shows one value with its unit, at the precision a reader
  // wants: 4 significant digits.
  function formatValue(v, unit) {
    const p = prefixFor(unit, Math.abs(v));
    return trimNumber(v / p.div, 4) + p.suffix;
  }

  // ---- Ticks -------------------------------------------------------------

  // niceTicks returns round values from lo to hi, about count of them.
  function niceTicks(lo, hi, count) {
    const raw = (hi - lo) / count;
    if (!(raw > 0) || !isFinite(raw)) return [lo];
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = mag * 10;
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (mag * m >= raw) { step = mag * m; break; }
    }
    const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Number(t.toFixed(decimals)));
    }
    return out;
  }

  const TIME_STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

  // timeTicks returns times from from to to (Unix seconds) on round local
  // times, about 5 of them.
  function timeTicks(from, to) {
    const span = to - from;
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) {
      if (s >= span / 6) { step = s; break; }
    }
    const offset = new Date(from * 1000).getTimezoneOffset() * 60; // UTC less local
    const out = [];
    for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) out.push(t);
    return out;
  }

  // formatTime shows Unix seconds in local time: the date at midnight, or
  // with the time when long is set.
  function formatTime(sec, long) {
    const d = new Date(sec * 1000);
    const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    const date = (d.getMonth() + 1) + "-" + pad2(d.getDate());
    if (long) return date + " " + hm + ":" + pad2(d.getSeconds());
    return hm === "00:00" ? date : hm;
  }

  // ---- Charts ------------------------------------------------------------

  const charts = new Map(); // svg → what was drawn, for the hover read-out

  // geometry is the layout of a chart, in its viewBox's units: the plot
  // leaves left of it room for the widest value label.
  function geometry(svg, labelChars) {
    const vb = svg.viewBox.baseVal;
    const w = vb && vb.width ? vb.width : 360, h = vb && vb.height ? vb.height : 170;
    const left = Math.min(Math.max(labelChars * 6.2 + 8, 32), 96), right = 10, top = 8, bottom = 22;
    return { w, h, left, right, top, plotW: w - left - right, plotH: h - top - bottom };
  }

  // draw replaces the chart with its series: model is {from, to, unit,
  // series: [{label, points, colour}]}, points being [Unix seconds, value].
  function draw(svg, model) {
    const from = model.from, to = model.to, span = to - from || 1;
    let lo = Infinity, hi = -Infinity, total = 0;
    for (const s of model.series) {
      for (const p of s.points) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
      total += s.points.length;
    }
    // The values' scale and labels first: the plot starts where the
    // widest label ends.
    let bottom = 0, top = 1, labels = [];
    if (total > 0) {
      // Keep the lines off the frame: a margin of 6% above and below, or
      // around a flat line.
      const margin = lo === hi ? Math.abs(lo) * 0.1 || 1 : (hi - lo) * 0.06;
      bottom = lo - margin;
      top = hi + margin;
      if (lo >= 0 && bottom < 0) bottom = 0;
      const p = prefixFor(model.unit, Math.max(Math.abs(bottom), Math.abs(top)));
      labels = niceTicks(bottom / p.div, top / p.div, 4)
        .filter((tick) => tick * p.div >= bottom && tick * p.div <= top)
        .map((tick) => ({ value: tick * p.div, text: trimNumber(tick, 6) + p.suffix }));
    }
    const g = geometry(svg, Math.max(0, ...labels.map((l) => l.text.length)));
    const x = (t) => g.left + Math.min(Math.max((t - from) / span, 0), 1) * g.plotW;
    const y = (v) => g.top + (top - v) / (top - bottom) * g.plotH;
    const nodes = [];
    // Vertical gridlines and the time axis, leaving out a label that would
    // run into the one before.
    let labelEnd = -Infinity;
    for (const t of timeTicks(from, to)) {
      const tx = x(t), label = formatTime(t, false), width = label.length * 6;
      nodes.push(svgEl("line", { class: "grid", x1: tx.toFixed(1), x2: tx.toFixed(1), y1: g.top, y2: g.top + g.plotH }));
      const left = Math.min(Math.max(tx - width / 2, g.left - 20), g.w - width);
      if (left < labelEnd + 4) continue;
      labelEnd = left + width;
      nodes.push(svgEl("text", { class: "axis x", x: (left + width / 2).toFixed(1), y: g.h - 6, "text-anchor": "middle" }, label));
    }
    if (total === 0) {
      nodes.push(svgEl("text", { class: "empty", x: g.left + g.plotW / 2, y: g.top + g.plotH / 2, "text-anchor": "middle" }, "no data in range"));
    }
    // Horizontal gridlines, each with its value.
    for (const l of labels) {
      const ty = y(l.value).toFixed(1);
      nodes.push(svgEl("line", { class: "grid", x1: g.left, x2: g.w - g.right, y1: ty, y2: ty }));
      nodes.push(svgEl("text", { class: "axis y", x: g.left - 4, y: (Number(ty) + 4).toFixed(1), "text-anchor": "end" }, l.text));
    }
    for (const s of model.series) {
      if (s.points.length === 0) continue;
      const coords = s.points.map((pt) => x(pt[0]).toFixed(1) + "," + y(pt[1]).toFixed(1)).join(" ");
      nodes.push(svgEl("polyline", { class: "line " + s.colour, points: coords, fill: "none" }));
      const last = s.points[s.points.length - 1];
      nodes.push(svgEl("circle", { class: "last " + s.colour, cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 2.5 }));
    }
    nodes.push(svgEl("rect", { class: "frame", x: g.left, y: g.top, width: g.plotW, height: g.plotH }));
    const hover = svgEl("g", { class: "hover", visibility: "hidden" });
    hover.appendChild(svgEl("line", { class: "crosshair", x1: 0, x2: 0, y1: g.top, y2: g.top + g.plotH }));
    for (const s of model.series) hover.appendChild(svgEl("circle", { class: "dot " + s.colour, r: 3.5, cx: 0, cy: 0 }));
    nodes.push(hover);
    svg.replaceChildren(...nodes);
    svg.dataset.points = String(total);
    charts.set(svg, { model, g, x, y: total > 0 ? y : null, hover });
    hideTooltip(svg);
  }

  // nearest returns the index of the point of points closest in time to t.
  function nearest(points, t) {
    let lo = 0, hi = points.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (points[mid][0] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && t - points[lo - 1][0] <= points[lo][0] - t) lo--;
    return lo;
  }

  function tooltipOf(svg) { return svg.parentElement.querySelector(".tooltip"); }

  function hideTooltip(svg) {
    const c = charts.get(svg);
    if (c) c.hover.setAttribute("visibility", "hidden");
    const tip = tooltipOf(svg);
    if (tip) tip.hidden = true;
  }

  // showTooltip shows, for the time under the pointer, the nearest point of
  // each series: a crosshair and a dot on the chart, the time and the
  // values beside it.
  function showTooltip(svg, clientX) {
    const c = charts.get(svg);
    const tip = tooltipOf(svg);
    if (!c || !c.y || !tip) return;
    const rect = svg.getBoundingClientRect();
    const g = c.g;
    const vx = (clientX - rect.left) / rect.width * g.w;
    if (vx < g.left || vx > g.w - g.right) { hideTooltip(svg); return; }
    const m = c.model;
    const t = m.from + (vx - g.left) / g.plotW * (m.to - m.from);
    // The crosshair goes to the point nearest the pointer of any series.
    let at = null;
    const found = m.series.map((s) => {
      if (s.points.length === 0) return null;
      const p = s.points[nearest(s.points, t)];
      if (at === null || Math.abs(p[0] - t) < Math.abs(at - t)) at = p[0];
      return p;
    });
    if (at === null) { hideTooltip(svg); return; }
    const cx = c.x(at);
    const line = c.hover.firstChild;
    line.setAttribute("x1", cx.toFixed(1));
    line.setAttribute("x2", cx.toFixed(1));
    const rows = [el("div", "tip-time", formatTime(at, true))];
    found.forEach((p, i) => {
      const dot = c.hover.children[i + 1];
      dot.setAttribute("visibility", p ? "inherit" : "hidden");
      if (!p) return;
      dot.setAttribute("cx", c.x(p[0]).toFixed(1));
      dot.setAttribute("cy", c.y(p[1]).toFixed(1));
      const row = el("div", "tip-row");
      row.append(el("span", "swatch " + m.series[i].colour), el("span", "tip-label", m.series[i].label),
        el("span", "tip-value", formatValue(p[1], m.unit)));
      if (p[0] !== at) row.append(el("span", "tip-at", " at " + formatTime(p[0], true).slice(-8)));
      rows.push(row);
    });
    tip.replaceChildren(...rows);
    c.hover.setAttribute("visibility", "visible");
    tip.hidden = false;
    // Beside the crosshair, on the side with room.
    const px = cx / g.w * rect.width;
    tip.classList.toggle("left", px > rect.width / 2);
    tip.style.left = px > rect.width / 2 ? "" : (px + 12) + "px";
    tip.style.right = px > rect.width / 2 ? (rect.width - px + 12) + "px" : "";
  }

  function watchHover(svg) {
    svg.addEventListener("pointermove", (ev) => showTooltip(svg, ev.clientX));
    svg.addEventListener("pointerleave", () => hideTooltip(svg));
  }

  // ---- Data --------------------------------------------------------------

  async function getJSON(url) {
    const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON: use the status */ }
    if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
    return body;
  }

  function stamp() {
    setText(document.getElementById("updated"), "updated " + new Date().toLocaleTimeString());
  }

  // localTimes shows every [data-time] (RFC 3339) in local time, with its age.
  function localTimes(root) {
    root.querySelectorAll("[data-time]").forEach((e) => {
      const t = Date.parse(e.dataset.time);
      if (isNaN(t)) return;
      const d = new Date(t);
      const ago = Math.max(0, Math.round((Date.now() - t) / 1000));
      const age = ago < 120 ? ago + " s" : ago < 7200 ? Math.round(ago / 60) + " min" : Math.round(ago / 3600) + " h";
      e.textContent = d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
        pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds()) + " (" + age + " ago)";
    });
  }

  // ---- The page's warning ------------------------------------------------

  // chartError shows why a chart failed under it, with since when, or
  // nothing when text is empty.
  function chartError(svg, text, since) {
    const p = svg.closest("figure").querySelector(".chart-error");
    if (!p) return;
    if (text === "") { setText(p, ""); return; }
    const when = el("span", "when", since);
    when.dataset.time = since;
    p.replaceChildren(document.createTextNode(text + " Since "), when);
    p.hidden = false;
    localTimes(p);
  }

  // pageWarning keeps one warning for the whole metrics page: a server that
  // is down is said once, with the time it went down, however many charts
  // lack its points; other troubles once each, with how many charts met
  // them and since when. It empties itself when they are over.
  function pageWarning() {
    const box = document.getElementById("page-warning");
    const listing = box ? (box.dataset.listing || "").split("\n").filter(Boolean) : [];
    const chartLines = new Map(); // svg → {lines, failed}: its latest reply's warning or error
    const firstSeen = new Map(); // line → when this page first met it
    let servers = null; // from /api/status, null before the first reply

    function render() {
      if (!box) return;
      const down = servers ? servers.filter((s) => s.down) : [];
      const named = (line, list) => list.some((s) => line.includes(s.address));
      const entries = down.map((s) => ({
        text: "Server " + s.address + " of " + s.node + " is down: charts may lack the points only it holds. Down since",
        time: s.down_since,
      }));
      const counts = new Map();
      for (const [svg, c] of chartLines) {
        // A chart that failed says why under it, unless the servers that
        // failed it are down: the warning says so for all.
        const explained = c.lines.every((line) => named(line, down));
        if (c.failed) chartError(svg, explained ? "" : c.lines.join("\n"), c.since);
        if (c.failed && !explained) continue;
        for (const line of new Set(c.lines)) {
          if (!named(line, down)) counts.set(line, (counts.get(line) || 0) + 1);
        }
      }
      // The listing's warning is as old as the page: a server the status
      // names is said above while down, and over once up.
      for (const line of listing) {
        if (!counts.has(line) && !(servers && named(line, servers))) counts.set(line, 0);
      }
      for (const line of Array.from(firstSeen.keys())) {
        if (!counts.has(line)) firstSeen.delete(line);
      }
      for (const [line, n] of counts) {
        if (!firstSeen.has(line)) firstSeen.set(line, new Date().toISOString());
        const where = n === 0 ? "listing hosts and metrics" : n === 1 ? "1 chart" : n + " charts";
        entries.push({ text: line + " (" + where + "). Since", time: firstSeen.get(line) });
      }
      const items = entries.map((e) => {
        const li = el("li", "", e.text + " ");
        li.append(el("span", "when", e.time));
        li.lastChild.dataset.time = e.time;
        return li;
      });
      box.querySelector("ul").replaceChildren(...items);
      localTimes(box);
      box.hidden = items.length === 0;
    }

    async function poll() {
      try {
        servers = (await getJSON("api/status")).servers;
      } catch (e) {
        servers = null;
      }
      render();
    }
    poll();
    setInterval(() => { if (!document.hidden) poll(); }, POLL_MS);
    return {
      // chart takes the warning of a chart's latest reply, or the error
      // that failed it when failed is set.
      chart(svg, text, failed) {
        const lines = (text || "").split("\n").filter(Boolean);
        svg.closest("figure").classList.toggle("partial", lines.length > 0);
        const before = chartLines.get(svg);
        const same = before && before.lines.join("\n") === lines.join("\n");
        chartLines.set(svg, { lines, failed: Boolean(failed) && lines.length > 0, since: same ? before.since : new Date().toISOString() });
        render();
      },
    };
  }

  // ---- The metrics page --------------------------------------------------

  // metricsPage keeps every chart on screen live: a host's series from
  // /api/series, an overview from /api/overview.
  function metricsPage() {
    const toolbar = document.querySelector(".toolbar");
    let range = toolbar ? toolbar.dataset.range : "1h";
    const all = Array.from(document.querySelectorAll("svg.plot[data-metric]"));
    const visible = new Set();
    const state = new Map(all.map((svg) => [svg, { busy: false, range: "", hosts: null, rankedAt: 0 }]));
    const warning = pageWarning();

    // pairs turns the API's points, {time: RFC 3339, value}, into the
    // [Unix seconds, value] pairs the charts draw.
    function pairs(points) {
      return points.map((p) => [Date.parse(p.time) / 1000, p.value]);
    }

    async function seriesModel(svg) {
      const q = new URLSearchParams({ host: svg.dataset.host, metric: svg.dataset.metric, range: range, max_points: String(MAX_POINTS) });
      const data = await getJSON("api/series?" + q.toString());
      return { data, series: [{ label: data.host, points: pairs(data.points), colour: "s0" }] };
    }

    async function overviewModel(svg, st) {
      const q = new URLSearchParams({ metric: svg.dataset.metric, range: range, max_points: String(OVERVIEW_POINTS) });
      const keep = st.hosts && st.hosts.length > 0 && st.range === range && Date.now() - st.rankedAt < RERANK_MS;
      if (keep) st.hosts.forEach((h) => q.append("host", h));
      else q.set("top", svg.dataset.top);
      const data = await getJSON("api/overview?" + q.toString());
      if (!keep) { st.hosts = data.series.map((s) => s.host); st.rankedAt = Date.now(); }
      return { data, series: data.series.map((s, i) => ({ label: s.host, points: pairs(s.points), colour: "s" + (i % COLOURS) })) };
    }

    function legend(fig, model) {
      const ul = fig.querySelector(".legend");
      if (!ul) return;
      ul.replaceChildren(...model.series.map((s) => {
        const li = el("li");
        const a = el("a", "", s.label);
        a.href = "?" + new URLSearchParams({ host: s.label, range: range }).toString();
        const last = s.points[s.points.length - 1];
        li.append(el("span", "swatch " + s.colour), a, el("span", "value", last ? formatValue(last[1], model.unit) : "no data"));
        return li;
      }));
    }

    // report gives the page's warning what a chart's reply said, unless
    // the chart went off screen while it was asked: it is not refreshed
    // there, so its warning would go stale. It is asked again once back.
    function report(svg, text, failed) {
      if (visible.has(svg)) {
        warning.chart(svg, text, failed);
      } else {
        state.get(svg).range = "";
        warning.chart(svg, "");
      }
    }

    async function refresh(svg) {
      const st = state.get(svg);
      if (st.busy) return;
      st.busy = true;
      const fig = svg.closest("figure");
      const asked = range;
      try {
        const got = svg.dataset.top ? await overviewModel(svg, st) : await seriesModel(svg);
        if (asked !== range) return;
        const model = { from: Date.parse(got.data.from) / 1000, to: Date.parse(got.data.to) / 1000, unit: unitOf(svg), series: got.series };
        draw(svg, model);
        st.range = asked;
        legend(fig, model);
        if (!svg.dataset.top) {
          const last = got.series[0].points[got.series[0].points.length - 1];
          setText(fig.querySelector(".latest"), last ? formatValue(last[1], model.unit) : "");
        }
        setText(fig.querySelector(".chart-error"), "");
        report(svg, got.data.warning, false);
        stamp();
      } catch (e) {
        report(svg, String(e.message || e), true);
      } finally {
        st.busy = false;
      }
    }

    all.forEach(watchHover);
    if ("IntersectionObserver" in window) {
      const io = new IntersectionObserver((entries) => {
        for (const en of entries) {
          if (en.isIntersecting) {
            visible.add(en.target);
            if (state.get(en.target).range !== range) refresh(en.target);
          } else {
            // Off screen it is not refreshed: its warning would go stale.
            visible.delete(en.target);
            state.get(en.target).range = "";
            warning.chart(en.target, "");
          }
        }
      }, { rootMargin: "200px" });
      all.forEach((svg) => io.observe(svg));
    } else {
      all.forEach((svg) => { visible.add(svg); refresh(svg); });
    }

    setInterval(() => {
      if (!document.hidden) visible.forEach(refresh);
    }, POLL_MS);

    // Switch the range in place; the links still work without the script.
    document.querySelectorAll("a.range[data-range]").forEach((a) => {
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        range = a.dataset.range;
        document.querySelectorAll("a.range").forEach((b) => b.classList.toggle("active", b === a));
        const url = new URL(window.location.href);
        url.searchParams.set("range", range);
        history.replaceState(null, "", url);
        document.querySelectorAll("nav.hosts a.host, figure.overview a.name").forEach((h) => {
          const u = new URL(h.href);
          u.searchParams.set("range", range);
          h.href = u.toString();
        });
        visible.forEach(refresh);
      });
    });
  }

  // ---- The status page ---------------------------------------------------

  // The status page: re-read the page every few seconds and swap its main
  // part. The HTML comes from html/template, which escaped every name, and
  // DOMParser runs no script.
  function statusPage() {
    const main = document.querySelector("main");
    localTimes(main);
    let busy = false;
    setInterval(async () => {
      if (document.hidden || busy) return;
      busy = true;
      try {
        const res = await fetch("status", { credentials: "same-origin", cache: "no-store" });
        if (!res.ok) throw new Error(res.status + " " + res.statusText);
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const fresh = doc.querySelector("main");
        if (fresh) {
          main.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.adoptNode(n)));
          localTimes(main);
          stamp();
        }
      } catch (e) {
        setText(document.getElementById("updated"), "update failed: " + String(e.message || e));
      } finally {
        busy = false;
      }
    }, STATUS_POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page === "status") statusPage();
    else metricsPage();
  });
})();
