// The hms-act console's only script: live updates. Every page works without it.
// - A run's page (#live[data-live]) listens to its server-sent events and, on each `change`, fetches the
//   live part again and swaps it in, keeping the focus and open details where they were.
// - Lists ([data-refresh=N]) fetch their page again every N seconds and swap that part in.
"use strict";
(function () {
  function swap(target, html, selector) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = selector ? doc.querySelector(selector) : doc.body;
    if (!fresh) return;
    var open = Array.prototype.map.call(target.querySelectorAll("details[open] summary"), function (s) {
      return s.closest("tr") && s.closest("tr").dataset.step;
    });
    target.innerHTML = fresh.innerHTML;
    open.forEach(function (step) {
      var row = target.querySelector('tr[data-step="' + step + '"] details');
      if (row) row.open = true;
    });
  }

  function live(region) {
    var source = new EventSource(region.dataset.live);
    source.addEventListener("change", function () {
      fetch(region.dataset.fragment, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) swap(region, html); });
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) { source.close(); }
    };
  }

  function refresh(region, index) {
    var seconds = parseInt(region.dataset.refresh, 10) || 10;
    var selector = "[data-refresh]";
    setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelectorAll(selector)[index];
          if (fresh) region.innerHTML = fresh.innerHTML;
        });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var region = document.querySelector("#live[data-live]");
    if (region && window.EventSource) live(region);
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), refresh);
  });
})();
