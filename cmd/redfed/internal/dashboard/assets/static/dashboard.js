// The dashboard's script: draws each series as an SVG line chart, keeps the
// charts and the status page live, and switches the time range in place.
// Names of hosts and metrics only ever go into the page as text
// (textContent, setAttribute, URLSearchParams), never as markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 5000;
  // The status page costs no command to a server: it polls more often, so
  // that a server that dies shows within seconds.
  const STATUS_POLL_MS = 2000;
  const MAX_POINTS = 1000;
  // Chart geometry, in viewBox units (the viewBox is 360 x 150).
  const W = 360, H = 150, LEFT = 56, RIGHT = 8, TOP = 8, BOTTOM = 22;
  const PLOT_W = W - LEFT - RIGHT, PLOT_H = H - TOP - BOTTOM;

  function svgEl(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pad2(n) { return String(n).padStart(2, "0"); }

  // formatTime shows Unix seconds in local time: the date as well when the
  // range is a day or more.
  function formatTime(sec, withDate) {
    const d = new Date(sec * 1000);
    const hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    return withDate ? (d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + hm : hm;
  }

  function formatValue(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  function setText(el, text) {
    if (!el) return;
    el.textContent = text;
    el.hidden = text === "";
  }

  // draw replaces the chart with the points of a /api/series reply.
  function draw(svg, data) {
    const from = Date.parse(data.from) / 1000, to = Date.parse(data.to) / 1000;
    // Points are {time: RFC 3339, value}; the chart works in Unix seconds.
    const pts = data.points.map((p) => [Date.parse(p.time) / 1000, p.value]);
    const nodes = [svgEl("rect", { class: "frame", x: LEFT, y: TOP, width: PLOT_W, height: PLOT_H })];
    const withDate = to - from >= 86400;
    nodes.push(svgEl("text", { class: "axis", x: LEFT, y: H - 6, "text-anchor": "start" }, formatTime(from, withDate)));
    nodes.push(svgEl("text", { class: "axis", x: W - RIGHT, y: H - 6, "text-anchor": "end" }, formatTime(to, withDate)));
    if (pts.length === 0) {
      nodes.push(svgEl("text", { class: "empty", x: LEFT + PLOT_W / 2, y: TOP + PLOT_H / 2, "text-anchor": "middle" }, "no data in range"));
    } else {
      let lo = Infinity, hi = -Infinity;
      for (const p of pts) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
      // Keep the line off the frame: a margin of 6% above and below, or
      // around a flat line.
      const margin = lo === hi ? Math.abs(lo) * 0.1 || 1 : (hi - lo) * 0.06;
      const bottom = lo - margin, top = hi + margin;
      const span = to - from || 1;
      const x = (t) => LEFT + Math.min(Math.max((t - from) / span, 0), 1) * PLOT_W;
      const y = (v) => TOP + (top - v) / (top - bottom) * PLOT_H;
      const coords = pts.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
      nodes.push(svgEl("polyline", { class: "line", points: coords, fill: "none" }));
      const last = pts[pts.length - 1];
      nodes.push(svgEl("circle", { class: "last", cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 2.5 }));
      // The highest and the lowest value, level with where they are drawn.
      nodes.push(svgEl("text", { class: "axis", x: LEFT - 4, y: (y(hi) + 4).toFixed(1), "text-anchor": "end" }, formatValue(hi)));
      if (lo !== hi) {
        nodes.push(svgEl("text", { class: "axis", x: LEFT - 4, y: (y(lo) + 4).toFixed(1), "text-anchor": "end" }, formatValue(lo)));
      }
    }
    svg.replaceChildren(...nodes);
    svg.dataset.points = String(pts.length);
  }

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

  // The metrics page: every chart polls /api/series while it is on screen.
  function metricsPage() {
    const toolbar = document.querySelector(".toolbar");
    let range = toolbar ? toolbar.dataset.range : "1h";
    const charts = Array.from(document.querySelectorAll("svg.plot[data-metric]"));
    const visible = new Set();
    const state = new Map(charts.map((svg) => [svg, { busy: false, range: "" }]));

    async function refresh(svg) {
      const st = state.get(svg);
      if (st.busy) return;
      st.busy = true;
      const fig = svg.closest("figure");
      const q = new URLSearchParams({ host: svg.dataset.host, metric: svg.dataset.metric, range: range, max_points: String(MAX_POINTS) });
      const asked = range;
      try {
        const data = await getJSON("api/series?" + q.toString());
        if (asked !== range) return;
        draw(svg, data);
        st.range = asked;
        const last = data.points[data.points.length - 1];
        setText(fig.querySelector(".latest"), last ? formatValue(last.value) : "");
        setText(fig.querySelector(".chart-error"), data.warning || "");
        stamp();
      } catch (e) {
        setText(fig.querySelector(".chart-error"), String(e.message || e));
      } finally {
        st.busy = false;
      }
    }

    if ("IntersectionObserver" in window) {
      const io = new IntersectionObserver((entries) => {
        for (const en of entries) {
          if (en.isIntersecting) {
            visible.add(en.target);
            if (state.get(en.target).range !== range) refresh(en.target);
          } else {
            visible.delete(en.target);
          }
        }
      }, { rootMargin: "200px" });
      charts.forEach((svg) => io.observe(svg));
    } else {
      charts.forEach((svg) => { visible.add(svg); refresh(svg); });
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
        document.querySelectorAll("nav.hosts a.host").forEach((h) => {
          const u = new URL(h.href);
          u.searchParams.set("range", range);
          h.href = u.toString();
        });
        visible.forEach(refresh);
      });
    });
  }

  // localTimes shows every [data-time] (RFC 3339) in local time, with its age.
  function localTimes(root) {
    root.querySelectorAll("[data-time]").forEach((el) => {
      const t = Date.parse(el.dataset.time);
      if (isNaN(t)) return;
      const d = new Date(t);
      const ago = Math.max(0, Math.round((Date.now() - t) / 1000));
      const age = ago < 120 ? ago + " s" : ago < 7200 ? Math.round(ago / 60) + " min" : Math.round(ago / 3600) + " h";
      el.textContent = d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
        pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds()) + " (" + age + " ago)";
    });
  }

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
