// byok console: the little that needs a script. Copy buttons; the deadline in the viewer's
// own time zone and a countdown that ticks. Everything works without it.
(function () {
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var target = document.getElementById(b.getAttribute("data-copy"));
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent).then(function () { b.textContent = "Copied"; });
      }
    });
  });
  var els = document.querySelectorAll("[data-deadline]");
  function tick() {
    els.forEach(function (el) {
      var deadline = new Date(el.getAttribute("data-deadline"));
      var local = el.querySelector(".local");
      if (local) { local.textContent = deadline.toLocaleString() + " (your time)"; }
      var left = Math.max(0, deadline - new Date());
      var d = Math.floor(left / 86400000), h = Math.floor(left / 3600000) % 24, m = Math.floor(left / 60000) % 60, s = Math.floor(left / 1000) % 60;
      var out = el.querySelector(".left");
      if (out) { out.textContent = d + "d " + h + "h " + m + "m " + s + "s left"; }
    });
  }
  if (els.length) { tick(); setInterval(tick, 1000); }
})();
