// Transcript playback: replays a run's output with its original timing,
// from each chunk's offset since the run started. The page already shows
// the whole output; playing clears the panes and writes it again.
(function () {
  "use strict";
  var player = document.getElementById("player");
  var runID = player.dataset.run;
  var panes = {
    combined: document.getElementById("combined"),
    stdout: document.getElementById("stdout"),
    stderr: document.getElementById("stderr")
  };
  var play = document.getElementById("play");
  var pause = document.getElementById("pause");
  var restart = document.getElementById("restart");
  var speed = document.getElementById("speed");
  var clock = document.getElementById("clock");
  var state = document.getElementById("play-state");

  var chunks = [];
  var next = 0;        // index of the next chunk to write
  var position = 0;    // ms of run time played so far
  var startedAt = 0;   // performance.now() when position was last taken
  var timer = null;
  var playing = 1;     // the speed since startedAt

  function rate() { return parseFloat(speed.value) || 1; }
  function now() { return timer === null ? position : position + (performance.now() - startedAt) * playing; }

  function clear() {
    Object.keys(panes).forEach(function (k) { panes[k].textContent = ""; });
  }

  function write(c) {
    var span = document.createElement("span");
    if (c.stream === "stderr") span.className = "stderr";
    span.textContent = c.text;
    panes.combined.appendChild(span);
    panes[c.stream === "stderr" ? "stderr" : "stdout"].appendChild(document.createTextNode(c.text));
  }

  function tick() {
    var t = now();
    while (next < chunks.length && chunks[next].offset_ms <= t) {
      write(chunks[next]);
      next++;
    }
    clock.textContent = (t / 1000).toFixed(1) + " s";
    if (next >= chunks.length) {
      stop();
      state.textContent = "finished";
      play.textContent = "Play";
      return;
    }
    var wait = (chunks[next].offset_ms - t) / playing;
    timer = setTimeout(tick, Math.max(0, Math.min(wait, 100)));
  }

  function start() {
    if (next >= chunks.length) { reset(); }
    playing = rate();
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

  function reset() {
    stop();
    next = 0;
    position = 0;
    clear();
    clock.textContent = "0.0 s";
  }

  play.addEventListener("click", function () {
    if (next === 0 && position === 0) clear();
    start();
  });
  pause.addEventListener("click", function () { stop(); state.textContent = "paused"; });
  restart.addEventListener("click", function () { reset(); start(); });
  speed.addEventListener("change", function () {
    if (timer !== null) { stop(); start(); }
  });

  fetch("/runs/" + encodeURIComponent(runID) + "/chunks", { headers: { "Accept": "application/json" }, credentials: "same-origin" })
    .then(function (resp) { if (!resp.ok) throw new Error(resp.statusText); return resp.json(); })
    .then(function (d) {
      chunks = d.chunks || [];
      player.hidden = false;
      if (chunks.length === 0) {
        play.disabled = true;
        restart.disabled = true;
        state.textContent = "no output to play";
      }
    })
    .catch(function () { /* the whole output is on the page already */ });
})();
