"""The report's stylesheet and script, written beside the pages (plain CSS and JS, no libraries).

The script reads the episode's data from ``window.EPISODE`` (inlined in each
episode page, since browsers refuse to fetch files over ``file://``), draws
the intervention timeline, the rewards (-1 marked) and the actions on
canvases, and scrubs the camera frames with a slider, the arrow keys or
Play. A cursor on every plot follows the current step.
"""

STYLE_FILE = "report.css"
SCRIPT_FILE = "report.js"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; }
th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #e4e4e4; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.id, th.id { text-align: left; font-family: monospace; }
.pager { margin: .6em 0; }
.pager a, .pager span { margin-right: .5em; }
.pager .current { font-weight: bold; }
.summary span { margin-right: 1.4em; }
.frames { display: flex; gap: 12px; flex-wrap: wrap; }
.frames figure { margin: 0; }
.frames img { image-rendering: pixelated; border: 1px solid #ccc; background: #eee; }
.frames figcaption { font-size: 12px; color: #555; }
.controls { margin: .6em 0; display: flex; gap: 10px; align-items: center; }
.controls input[type=range] { width: 520px; }
canvas { border: 1px solid #ddd; display: block; margin-bottom: 6px; }
.muted { color: #777; }
.terminal { color: #c0392b; }
.invalid { color: #b03a2e; font-weight: bold; }
.valid { color: #777; }
.banner { background: #fdecea; border: 1px solid #e6b0aa; padding: 4px 10px; margin: .4em 0; }
#state td { font-family: monospace; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var E = window.EPISODE;
  if (!E) { return; }
  var slider = document.getElementById("step");
  var label = document.getElementById("step-label");
  var images = E.cameras.map(function (c) { return document.getElementById("cam-" + c.slot); });
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function pad(n) { var s = String(n); while (s.length < 5) { s = "0" + s; } return s; }

  function frame(camera, t) { return camera.dir + "/" + pad(t) + "." + E.frame_ext; }

  function axes(canvas) {
    var ctx = canvas.getContext("2d");
    var box = { left: 46, right: canvas.width - 10, top: 8, bottom: canvas.height - 18 };
    box.x = function (t) {
      var span = Math.max(E.steps - 1, 1);
      return box.left + (box.right - box.left) * t / span;
    };
    return { ctx: ctx, box: box };
  }

  function yScale(box, lo, hi) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
    return function (v) { return box.bottom - (box.bottom - box.top) * (v - lo) / (hi - lo); };
  }

  function frameAxes(ctx, box, lo, hi, title) {
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
    ctx.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
    ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
    ctx.fillText(title, box.left + 4, box.top + 11);
    if (lo !== null) {
      ctx.fillText(String(+hi.toPrecision(3)), 2, box.top + 9);
      ctx.fillText(String(+lo.toPrecision(3)), 2, box.bottom);
    }
    ctx.fillText("0", box.left, box.bottom + 13);
    ctx.fillText(String(E.steps - 1), box.right - 24, box.bottom + 13);
  }

  function range(series) {
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (s) { s.forEach(function (v) {
      if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }); });
    if (lo === Infinity) { lo = -1; hi = 1; }
    return [lo, hi];
  }

  function line(ctx, box, y, values, color) {
    ctx.strokeStyle = color; ctx.lineWidth = 1.2; ctx.beginPath();
    var started = false;
    values.forEach(function (v, t) {
      if (v === null || !isFinite(v)) { started = false; return; }
      if (started) { ctx.lineTo(box.x(t), y(v)); }
      else { ctx.moveTo(box.x(t), y(v)); started = true; }
    });
    ctx.stroke();
  }

  function cursor(ctx, box, t) {
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.beginPath();
    ctx.moveTo(box.x(t) + 0.5, box.top); ctx.lineTo(box.x(t) + 0.5, box.bottom); ctx.stroke();
  }

  function drawTimeline(t) {
    var a = axes(document.getElementById("plot-intervention")), ctx = a.ctx, box = a.box;
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    var w = Math.max((box.right - box.left) / Math.max(E.steps - 1, 1), 1);
    for (var i = 0; i < E.transitions; i++) {
      ctx.fillStyle = E.intervention[i] ? "#f28e2b" : "#d0d0d0";
      ctx.fillRect(box.x(i), box.top + 14, w, box.bottom - box.top - 14);
      if (E.include) {
        ctx.fillStyle = E.include[i] ? "#2ca02c" : "#ffffff";
        ctx.fillRect(box.x(i), box.bottom - 5, w, 5);
      }
      if (E.takeover_start[i]) {
        ctx.fillStyle = "#000";
        ctx.fillRect(box.x(i), box.top + 12, 1.5, box.bottom - box.top - 12);
      }
    }
    frameAxes(ctx, box, null, null, "who is in control: expert (orange) / learner (grey)" +
              (E.include ? "; green strip: in the view (include)" : ""));
    cursor(ctx, box, t);
  }

  function drawRewards(t) {
    var a = axes(document.getElementById("plot-reward")), ctx = a.ctx, box = a.box;
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    var r = range([E.reward]), y = yScale(box, Math.min(r[0], 0), Math.max(r[1], 0));
    frameAxes(ctx, box, Math.min(r[0], 0), Math.max(r[1], 0),
              "reward (" + E.reward_label + "); red: -1");
    line(ctx, box, y, E.reward, "#1f77b4");
    ctx.fillStyle = "#d62728";
    E.reward.forEach(function (v, i) {
      if (v === -1) { ctx.beginPath(); ctx.arc(box.x(i), y(v), 3.5, 0, 2 * Math.PI); ctx.fill(); }
    });
    cursor(ctx, box, t);
  }

  function drawActions(t) {
    var a = axes(document.getElementById("plot-action")), ctx = a.ctx, box = a.box;
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    var r = range(E.action), y = yScale(box, r[0], r[1]);
    frameAxes(ctx, box, r[0], r[1], "actions (" + E.action.length + " dims)");
    E.action.forEach(function (values, d) {
      line(ctx, box, y, values, COLORS[d % COLORS.length]);
    });
    cursor(ctx, box, t);
  }

  function showState(t) {
    var cell = document.getElementById("state-values");
    if (!cell || !E.state) { return; }
    cell.textContent = E.state[t].map(function (v) {
      return v === null ? "nan" : (+v.toPrecision(4)); }).join("  ");
  }

  function show(t) {
    t = Math.max(0, Math.min(E.steps - 1, t | 0));
    slider.value = t;
    var who = t < E.transitions ? (E.intervention[t] ? "expert" : "learner") : "final observation";
    label.textContent = "step " + t + " / " + (E.steps - 1) + " (" + who + ")";
    E.cameras.forEach(function (c, i) { images[i].src = frame(c, t); });
    drawTimeline(t); drawRewards(t); drawActions(t); showState(t);
  }

  var timer = null;
  document.getElementById("play").addEventListener("click", function () {
    if (timer) { clearInterval(timer); timer = null; this.textContent = "Play"; return; }
    this.textContent = "Pause";
    var button = this;
    timer = setInterval(function () {
      var t = +slider.value + 1;
      if (t >= E.steps) { clearInterval(timer); timer = null; button.textContent = "Play"; return; }
      show(t);
    }, 1000 / E.fps);
  });
  slider.addEventListener("input", function () { show(+slider.value); });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowRight") { show(+slider.value + 1); }
    if (ev.key === "ArrowLeft") { show(+slider.value - 1); }
  });
  show(0);
  document.body.setAttribute("data-ready", "1");
}());
"""
