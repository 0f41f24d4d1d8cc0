/* Servewise web UI: plain JS, no framework. Two jobs: a progress indicator on slow forms, and charts. */
(function () {
  "use strict";

  // Forms marked data-progress show a spinner and a message on their submit button while the server works.
  function wireProgress(form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit][data-progress-label]") || form.querySelector("button[type=submit]");
      if (!button || button.disabled) { return; }
      var label = button.getAttribute("data-progress-label") || "working…";
      button.setAttribute("aria-busy", "true");
      button.innerHTML = '<span class="spinner" aria-hidden="true"></span><span>' + label + "</span>";
      // Disable after the browser has captured the submission (a disabled button is not submitted).
      window.setTimeout(function () { button.disabled = true; }, 0);
      var note = form.querySelector("[data-progress-note]");
      if (note) { note.hidden = false; }
    });
  }

  // Compare checkboxes: allow 2–3 options, enable the button only then.
  function wireCompare(form) {
    var boxes = form.querySelectorAll("input[type=checkbox][name=options]");
    var button = form.querySelector("button[type=submit]");
    function update() {
      var n = 0;
      boxes.forEach(function (b) { if (b.checked) { n += 1; } });
      boxes.forEach(function (b) { b.disabled = !b.checked && n >= 3; });
      if (button) { button.disabled = n < 2; }
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  // Charts: each <div class="chart" data-chart="KEY"> is drawn from the page's embedded JSON (#chart-data).
  function drawCharts() {
    var holder = document.getElementById("chart-data");
    if (!holder || typeof window.Plotly === "undefined") { return; }
    var specs = JSON.parse(holder.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var spec = specs[el.getAttribute("data-chart")];
      if (!spec) { return; }
      var layout = Object.assign({ margin: { l: 60, r: 15, t: 10, b: 50 }, autosize: true,
        legend: { orientation: "h", y: -0.25 }, font: { size: 12 } }, spec.layout || {});
      window.Plotly.newPlot(el, spec.data, layout, { responsive: true, displaylogo: false });
      el.setAttribute("data-rendered", "true");
    });
  }

  // Long option tables: rows marked data-more are folded behind a "Show all" button (visible without JS).
  function foldRows() {
    var button = document.getElementById("more-options");
    var rows = document.querySelectorAll("tr[data-more]");
    if (!button || rows.length === 0) { return; }
    rows.forEach(function (r) { r.hidden = true; });
    button.hidden = false;
    button.addEventListener("click", function () {
      rows.forEach(function (r) { r.hidden = false; });
      button.hidden = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    foldRows();
    document.querySelectorAll("form[data-progress]").forEach(wireProgress);
    document.querySelectorAll("form[data-compare]").forEach(wireCompare);
    drawCharts();
  });
}());
