// byok console: the little that needs a script. Copy buttons; every time shown also in the
// viewer's own time zone, with the zone's name; a countdown that ticks and turns red in the last
// 24 hours; a tenant's pages reload themselves when its state changes. Everything works without
// it (the server writes UTC and the time left; a reload shows the new state).
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var target = document.getElementById(b.getAttribute("data-copy"));
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent).then(function () { b.textContent = "Copied"; });
      }
    });
  });
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var at = new Date(t.getAttribute("datetime"));
    if (isNaN(at) || zone === "UTC" || zone === "Etc/UTC") { return; }
    var local = document.createElement("span");
    local.className = "local muted";
    local.textContent = " (" + at.toLocaleString(undefined, { timeZoneName: "short" }) + (zone ? ", " + zone : "") + ")";
    t.after(local);
  });
  // The time left counts from the server's answer, not from the viewer's clock (which may be
  // off by hours): what the server said at load, minus the time since.
  var els = document.querySelectorAll("[data-left-seconds]");
  var loaded = Date.now();
  function tick() {
    els.forEach(function (el) {
      var left = Number(el.getAttribute("data-left-seconds")) * 1000 - (Date.now() - loaded);
      var out = el.querySelector(".left");
      if (!out) { return; }
      if (left <= 0) {
        out.textContent = "The deadline has passed: reload the page.";
        el.classList.add("urgent");
        return;
      }
      if (left < 86400000) { el.classList.add("urgent"); }
      var d = Math.floor(left / 86400000), h = Math.floor(left / 3600000) % 24, m = Math.floor(left / 60000) % 60, s = Math.floor(left / 1000) % 60;
      out.textContent = (d ? d + "d " : "") + h + "h " + m + "m " + s + "s left";
    });
  }
  if (els.length) { tick(); setInterval(tick, 1000); }
  // The page follows the tenant: when its state changes (revoked, restored, held…), reload,
  // unless the viewer is typing (a comment is never lost to a refresh).
  var watch = document.querySelector("[data-watch]");
  if (watch && window.fetch) {
    setInterval(function () {
      var typing = Array.prototype.some.call(document.querySelectorAll("textarea, input[type=text]"), function (f) { return f.value.trim() !== ""; });
      if (typing || document.hidden) { return; }
      fetch(watch.getAttribute("data-watch"), { credentials: "same-origin", headers: { "accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s && s.state && s.state !== watch.getAttribute("data-state")) { window.location.reload(); } })
        .catch(function () {});
    }, 5000);
  }
})();
