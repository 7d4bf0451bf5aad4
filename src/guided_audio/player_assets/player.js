"use strict";
(function () {
  var data = JSON.parse(document.getElementById("player-data").textContent);
  var audio = document.getElementById("audio");
  var shape = document.getElementById("breath");
  var label = document.getElementById("breath-label");
  var caption = document.getElementById("caption");
  var chapterList = document.getElementById("chapters");
  var playButton = document.getElementById("play");
  var clock = document.getElementById("clock");
  var SMALL = 0.55, LARGE = 1.0, TOP = 1.1;
  var WORDS = {inhale: "Breathe in", "top-up": "A little more", hold: "Hold", exhale: "Breathe out", rest: "Rest"};
  var current = null, chapterButtons = [], lastChapter = -2, lastCue = null;

  function clockText(t) {
    t = Math.max(0, Math.floor(t || 0));
    return Math.floor(t / 60) + ":" + String(t % 60).padStart(2, "0");
  }

  // Each phase moves the shape from where the last one left it: in-breaths grow, holds rest, out-breaths shrink.
  function shapePlan(phases) {
    var plan = [], end = SMALL, previousEnd = -1;
    phases.forEach(function (p) {
      var from = Math.abs(p.start - previousEnd) < 0.5 ? end : SMALL;
      var to = from;
      if (p.name === "inhale") { from = Math.abs(p.start - previousEnd) < 0.5 ? end : SMALL; to = LARGE; }
      else if (p.name === "top-up") { to = TOP; }
      else if (p.name === "exhale") { to = SMALL; }
      else if (p.name === "rest") { from = SMALL; to = SMALL; }
      plan.push({name: p.name, start: p.start, end: p.end, from: from, to: to});
      end = to; previousEnd = p.end;
    });
    return plan;
  }

  function find(list, t, startKey, endKey) {
    var lo = 0, hi = list.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (list[mid][startKey] <= t) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    if (found >= 0 && endKey && t >= list[found][endKey]) return -1;
    return found;
  }

  function ease(x) { return (1 - Math.cos(Math.PI * Math.min(1, Math.max(0, x)))) / 2; }

  function update() {
    if (!current) return;
    var t = audio.currentTime;
    var i = find(current.plan, t, "start", "end");
    var scale = SMALL, name = "";
    if (i >= 0) {
      var p = current.plan[i];
      scale = p.from + (p.to - p.from) * ease((t - p.start) / Math.max(0.001, p.end - p.start));
      name = p.name;
    }
    shape.style.transform = "scale(" + scale.toFixed(3) + ")";
    shape.setAttribute("data-scale", scale.toFixed(3));
    shape.setAttribute("data-phase", name);
    shape.classList.toggle("active", name !== "");
    var word = WORDS[name] || "";
    if (label.textContent !== word) label.textContent = word;
    var c = find(current.cues, t, "start", "end");
    var text = c >= 0 ? current.cues[c].text : "";
    if (text !== lastCue) { caption.textContent = text; lastCue = text; }
    var k = find(current.chapters, t, "start", null);
    if (k !== lastChapter) {
      chapterButtons.forEach(function (b, n) { if (n === k) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current"); });
      lastChapter = k;
    }
    clock.textContent = clockText(t) + " / " + clockText(current.duration || audio.duration);
  }

  function loop() { update(); if (!audio.paused) window.requestAnimationFrame(loop); }

  function load(index) {
    var s = data.sessions[index];
    if (!s) return;
    current = {duration: s.duration, plan: shapePlan(s.phases || []), cues: s.cues || [], chapters: s.chapters || []};
    var heading = document.getElementById("session-title");
    heading.textContent = s.title;
    heading.hidden = data.sessions.length === 1;  // the page's own title names it already
    audio.src = s.audio;
    document.getElementById("download").setAttribute("href", s.audio);
    var vtt = document.getElementById("vtt");
    if (s.vtt) { vtt.setAttribute("href", s.vtt); vtt.hidden = false; } else { vtt.hidden = true; }
    chapterList.textContent = "";
    chapterButtons = current.chapters.map(function (c) {
      var li = document.createElement("li"), b = document.createElement("button"), at = document.createElement("span");
      b.type = "button";
      b.appendChild(document.createTextNode(c.title));
      at.className = "at"; at.textContent = clockText(c.start);
      b.appendChild(at);
      b.addEventListener("click", function () { audio.currentTime = c.start; update(); audio.play(); });
      li.appendChild(b); chapterList.appendChild(li);
      return b;
    });
    document.querySelectorAll(".pick").forEach(function (b) {
      if (Number(b.getAttribute("data-index")) === index) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
    lastChapter = -2; lastCue = null;
    update();
  }

  function toggle() { if (audio.paused) audio.play(); else audio.pause(); }
  function skip(seconds) { audio.currentTime = Math.max(0, audio.currentTime + seconds); update(); }

  playButton.addEventListener("click", toggle);
  document.getElementById("back").addEventListener("click", function () { skip(-15); });
  document.getElementById("forward").addEventListener("click", function () { skip(15); });
  audio.addEventListener("play", function () { playButton.textContent = "Pause"; playButton.setAttribute("aria-label", "Pause"); loop(); });
  audio.addEventListener("pause", function () { playButton.textContent = "Play"; playButton.setAttribute("aria-label", "Play"); update(); });
  ["timeupdate", "seeked", "loadedmetadata"].forEach(function (e) { audio.addEventListener(e, update); });
  document.querySelectorAll(".pick").forEach(function (b) {
    b.addEventListener("click", function () { load(Number(b.getAttribute("data-index"))); audio.play(); });
  });
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "BUTTON" || tag === "AUDIO" || tag === "INPUT" || tag === "A") return;
    if (e.key === " " || e.key === "k") { e.preventDefault(); toggle(); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); skip(-5); }
    else if (e.key === "ArrowRight") { e.preventDefault(); skip(5); }
  });
  load(0);
})();
