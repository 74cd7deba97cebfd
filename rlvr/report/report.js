// The rollout browser of report.html: filters the embedded rollouts and renders them with textContent only
// (model text is untrusted; it never becomes markup).
(function () {
  "use strict";
  var PAGE = 50;
  var data = JSON.parse(document.getElementById("rollout-data").textContent);
  var shown = PAGE;
  function el(id) { return document.getElementById(id); }
  function make(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function runName(r) { return r.algo + " / seed " + r.seed; }
  function fill(select, values) {
    values.forEach(function (v) { var o = make("option", null, v); o.value = v; select.appendChild(o); });
  }
  function unique(fn) {
    var seen = {}, out = [];
    data.forEach(function (r) { var v = fn(r); if (!Object.prototype.hasOwnProperty.call(seen, v)) { seen[v] = 1; out.push(v); } });
    return out;
  }
  fill(el("f-run"), unique(runName));
  fill(el("f-env"), unique(function (r) { return r.env; }).sort());
  var steps = data.map(function (r) { return r.step; });
  if (steps.length) {
    var lo = String(Math.min.apply(null, steps)), hi = String(Math.max.apply(null, steps));
    ["f-step-min", "f-step-max"].forEach(function (id) {  // the recorded range, as bounds and a hint
      el(id).min = lo;
      el(id).max = hi;
      el(id).title = "recorded steps: " + lo + " to " + hi;
    });
  }
  function number(id) {
    var raw = el(id).value;
    if (raw === "") { return null; }
    var v = Number(raw);
    return isFinite(v) ? v : null;
  }
  function matches(r, f) {
    if (f.run && runName(r) !== f.run) { return false; }
    if (f.env && r.env !== f.env) { return false; }
    if (f.stepMin !== null && r.step < f.stepMin) { return false; }
    if (f.stepMax !== null && r.step > f.stepMax) { return false; }
    if (f.outcome === "success" && !r.success) { return false; }
    if (f.outcome === "failure" && r.success) { return false; }
    var reward = r.reward === null ? 0 : r.reward;
    if (f.rewardMin !== null && reward < f.rewardMin) { return false; }
    if (f.rewardMax !== null && reward > f.rewardMax) { return false; }
    if (f.text) {
      var hay = r.messages.map(function (m) { return m.content; }).join("\n").toLowerCase();
      if (hay.indexOf(f.text) < 0) { return false; }
    }
    return true;
  }
  function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  function card(r) {
    var box = make("article", "rollout " + (r.success ? "ok" : "bad"));
    box.dataset.step = String(r.step);
    box.dataset.env = r.env;
    var head = make("div", "head");
    [runName(r), "step " + r.step, r.env, "reward " + fmt(r.reward, 3), r.success ? "success" : (r.status || "failure"),
     "advantage " + (r.advantage === null ? "not recorded" : (r.advantage >= 0 ? "+" : "") + fmt(r.advantage, 3)),
     r.turns + (r.turns === 1 ? " turn" : " turns"), r.tokens + " model tokens" + (r.truncated ? ", truncated" : "")
    ].forEach(function (t) { head.appendChild(make("span", null, t)); });
    box.appendChild(head);
    var names = Object.keys(r.components || {});
    if (names.length) {
      var chips = make("div", "chips");
      names.forEach(function (n) { chips.appendChild(make("span", "chip", n + " " + fmt(r.components[n], 3))); });
      box.appendChild(chips);
    }
    var turn = 0;
    r.messages.forEach(function (m) {
      var msg = make("div", "msg " + (m.role === "assistant" ? "assistant" : "other"));
      if (m.role === "assistant") { turn += 1; }
      msg.appendChild(make("div", "role", m.role === "assistant" ? "model · turn " + turn : m.role));
      msg.appendChild(make("pre", null, m.content));
      box.appendChild(msg);
    });
    return box;
  }
  function render() {
    var f = {
      run: el("f-run").value, env: el("f-env").value, outcome: el("f-outcome").value,
      stepMin: number("f-step-min"), stepMax: number("f-step-max"),
      rewardMin: number("f-reward-min"), rewardMax: number("f-reward-max"),
      text: el("f-text").value.trim().toLowerCase()
    };
    var hits = data.filter(function (r) { return matches(r, f); });
    var list = el("rollout-list");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    hits.slice(0, shown).forEach(function (r) { list.appendChild(card(r)); });
    el("rollout-count").textContent = data.length === 0 ? "No sample rollouts were logged (logging.sample_rollouts: 0)." :
      "showing " + Math.min(shown, hits.length) + " of " + hits.length + " matching rollouts (" + data.length + " in the report)";
    el("rollout-more").hidden = hits.length <= shown;
  }
  ["f-run", "f-env", "f-outcome", "f-step-min", "f-step-max", "f-reward-min", "f-reward-max", "f-text"].forEach(function (id) {
    el(id).addEventListener("input", function () { shown = PAGE; render(); });
    el(id).addEventListener("change", function () { shown = PAGE; render(); });
  });
  el("rollout-more").addEventListener("click", function () { shown += PAGE; render(); });
  render();
}());
