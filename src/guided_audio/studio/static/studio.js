"use strict";
// The studio's small script: a live preview of a practice's script, and a render's progress.
document.documentElement.classList.add("has-js");

function livePreview(form) {
  var url = form.getAttribute("data-preview");
  var pane = document.querySelector(".preview");
  var timer = null, asked = 0;
  function show(result) {
    document.getElementById("preview-text").textContent = result.text;
    document.getElementById("planned").textContent = result.planned;
    var list = document.getElementById("warnings");
    list.textContent = "";
    result.warnings.forEach(function (w) {
      var li = document.createElement("li");
      li.textContent = "warning: " + w;
      list.appendChild(li);
    });
    form.querySelectorAll("[data-field]").forEach(function (box) {
      var name = box.getAttribute("data-field");
      var message = result.errors[name] || "";
      box.classList.toggle("invalid", message !== "");
      var slot = box.querySelector(".error");
      if (slot) slot.textContent = message;
    });
    var general = result.errors[""] || "";
    document.getElementById("general-error").textContent = general;
    pane.classList.remove("stale");
  }
  function refresh() {
    var mine = ++asked;
    pane.classList.add("stale");
    fetch(url, {method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (result) { if (mine === asked) show(result); })
      .catch(function () { document.getElementById("general-error").textContent = "The studio did not answer; is it still running?"; });
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  document.getElementById("refresh").addEventListener("click", refresh);
}

function followJob(box) {
  var stage = document.getElementById("stage"), bar = document.getElementById("progress");
  var stages = document.getElementById("stages"), error = document.getElementById("job-error");
  function poll() {
    fetch(box.getAttribute("data-state"), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (job) {
        stage.textContent = job.stage + (job.state === "running" ? " \u2026 " + Math.round(job.fraction * 100) + "%" : "");
        bar.value = job.fraction;
        stages.textContent = "";
        job.stages.forEach(function (s) { var li = document.createElement("li"); li.textContent = s; stages.appendChild(li); });
        if (job.state === "done") { stage.textContent = "Done"; window.location.assign(box.getAttribute("data-player")); }
        else if (job.state === "failed") { error.textContent = "error: " + job.error; }
        else setTimeout(poll, 400);
      })
      .catch(function () { setTimeout(poll, 1000); });
  }
  poll();
}

document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("practice-form");
  if (form) livePreview(form);
  var job = document.getElementById("job");
  if (job) followJob(job);
});
