// The transcript player. The page holds the whole output once, each line
// and each later piece of a line with the millisecond it was printed at
// since the run started (data-t; a line without one was printed with the
// line before); playing shows the pieces as their time comes, so seeking
// is only showing and hiding. Space plays or pauses, the arrows seek 5 s,
// Home and End go to either end. The find box marks the lines that hold a
// text and steps through them; Show keeps one stream.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var total = parseInt(player.dataset.total, 10) || 0;
  var play = document.getElementById("play");
  var pause = document.getElementById("pause");
  var restart = document.getElementById("restart");
  var speed = document.getElementById("speed");
  var seek = document.getElementById("seek");
  var clock = document.getElementById("clock");
  var state = document.getElementById("play-state");

  // Every line and timed piece, in time order (document order among
  // equals).
  var timed = [];
  var lineT = 0;
  Array.prototype.forEach.call(document.querySelectorAll("#combined .line"), function (line) {
    if (line.dataset.t !== undefined) lineT = parseInt(line.dataset.t, 10) || 0;
    line._t = lineT;
    timed.push(line);
    Array.prototype.forEach.call(line.querySelectorAll("[data-t]"), function (piece) {
      piece._t = parseInt(piece.dataset.t, 10) || 0;
      timed.push(piece);
    });
  });
  timed.forEach(function (el, i) { el._i = i; });
  timed.sort(function (a, b) { return a._t - b._t || a._i - b._i; });
  var shown = timed.length; // timed[0:shown] are visible

  var position = total;  // ms of run time shown
  var startedAt = 0;     // performance.now() when position was last taken
  var rate = 1;
  var timer = null;

  function seconds(ms) { return (ms / 1000).toFixed(1) + " s"; }

  // show makes the page what was printed by time t.
  function show(t) {
    while (shown < timed.length && timed[shown]._t <= t) { timed[shown].hidden = false; shown++; }
    while (shown > 0 && timed[shown - 1]._t > t) { shown--; timed[shown].hidden = true; }
    seek.value = String(Math.min(t, total));
    clock.textContent = seconds(Math.min(t, total)) + " / " + seconds(total);
  }

  function now() { return timer === null ? position : position + (performance.now() - startedAt) * rate; }

  function tick() {
    var t = now();
    if (t >= total) {
      stop();
      position = total;
      show(Infinity);
      state.textContent = "finished";
      return;
    }
    show(t);
    var next = shown < timed.length ? timed[shown]._t : total;
    timer = setTimeout(tick, Math.max(0, Math.min((next - t) / rate, 100)));
  }

  function start() {
    if (position >= total) { position = 0; }
    rate = parseFloat(speed.value) || 1;
    show(position);
    startedAt = performance.now();
    timer = setTimeout(tick, 0);
    play.disabled = true;
    pause.disabled = false;
    state.textContent = "playing";
  }

  function stop() {
    if (timer !== null) {
      position = now();
      clearTimeout(timer);
      timer = null;
    }
    play.disabled = false;
    pause.disabled = true;
  }

  function moveTo(t) {
    var playing = timer !== null;
    stop();
    position = Math.max(0, Math.min(t, total));
    show(position === total ? Infinity : position);
    if (playing && position < total) start();
  }

  function toggle() {
    if (timer !== null) { stop(); state.textContent = "paused"; } else { start(); }
  }

  play.addEventListener("click", start);
  pause.addEventListener("click", function () { stop(); state.textContent = "paused"; });
  restart.addEventListener("click", function () { stop(); position = 0; start(); });
  speed.addEventListener("change", function () { if (timer !== null) { stop(); start(); } });
  seek.addEventListener("input", function () { moveTo(parseInt(seek.value, 10) || 0); });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var tag = e.target && e.target.tagName;
    if (/^(INPUT|TEXTAREA|SELECT|BUTTON|SUMMARY)$/.test(tag) || (e.target && e.target.isContentEditable)) return;
    switch (e.key) {
      case " ": toggle(); break;
      case "ArrowLeft": moveTo(now() - 5000); break;
      case "ArrowRight": moveTo(now() + 5000); break;
      case "Home": moveTo(0); break;
      case "End": moveTo(total); break;
      default: return;
    }
    e.preventDefault();
  });

  // Find in the output: the lines holding the text (any case) are marked,
  // the text itself highlighted where the browser can (CSS highlights);
  // Next steps through them and puts the line's #L in the address.
  var findForm = document.getElementById("find-form");
  var find = document.getElementById("find");
  var findCount = document.getElementById("find-count");
  var lines = Array.prototype.slice.call(document.querySelectorAll("#combined .line:not(.marker):not(.folded)"));
  var found = [];
  var current = -1;

  function mark() {
    var needle = find.value.toLowerCase();
    found.forEach(function (l) { l.classList.remove("found", "found-current"); });
    found = [];
    current = -1;
    var ranges = [];
    if (needle !== "") {
      lines.forEach(function (line) {
        var tx = line.querySelector(".tx");
        if (!tx || tx.textContent.toLowerCase().indexOf(needle) < 0) return;
        line.classList.add("found");
        found.push(line);
        var walk = document.createTreeWalker(tx, NodeFilter.SHOW_TEXT);
        for (var node = walk.nextNode(); node; node = walk.nextNode()) {
          var text = node.data.toLowerCase();
          for (var at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) {
            var r = document.createRange();
            r.setStart(node, at);
            r.setEnd(node, at + needle.length);
            ranges.push(r);
          }
        }
      });
    }
    if (window.CSS && CSS.highlights && window.Highlight) {
      CSS.highlights.set("find", new Highlight(...ranges));
    }
    findCount.textContent = needle === "" ? "" : found.length === 1 ? "1 line" : found.length + " lines";
  }

  function next() {
    if (found.length === 0) return;
    if (current >= 0) found[current].classList.remove("found-current");
    current = (current + 1) % found.length;
    var line = found[current];
    line.classList.add("found-current");
    line.scrollIntoView({ block: "center" });
    history.replaceState(null, "", "#" + line.id);
    findCount.textContent = (current + 1) + " of " + found.length + " lines";
  }

  var streams = document.getElementById("streams");
  var combined = document.getElementById("combined");
  streams.addEventListener("change", function () {
    combined.classList.remove("only-stdout", "only-stderr");
    if (streams.value !== "") combined.classList.add("only-" + streams.value);
  });

  find.addEventListener("input", mark);
  findForm.addEventListener("submit", function (e) { e.preventDefault(); next(); });

  player.hidden = false;
  findForm.hidden = false;
  if (timed.length === 0) {
    play.disabled = true;
    restart.disabled = true;
    seek.disabled = true;
    state.textContent = "no output to play";
  }
  if (find.value !== "") mark();
})();
