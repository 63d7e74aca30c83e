// The console: sends a command without leaving the page and follows it
// over Server-Sent Events. Each entry shows the reply first; each stage's
// raw output is behind its own toggle, stages and their parallel
// invocations in order. Without scripts the form still works and leads to
// the request's page.
(function () {
  "use strict";
  var form = document.getElementById("console-form");
  var input = document.getElementById("command");
  var csrf = document.getElementById("csrf").value;
  var list = document.getElementById("scrollback");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function newEntry(id, text) {
    var li = el("li", "entry");
    var head = el("div", "entry-head");
    head.appendChild(el("code", "typed", text));
    head.appendChild(document.createTextNode(" "));
    if (id) {
      li.dataset.request = id;
      var link = el("a", "", "request");
      link.href = "/requests/" + encodeURIComponent(id);
      head.appendChild(link);
      head.appendChild(document.createTextNode(" "));
    }
    head.appendChild(el("span", "status", id ? "running…" : ""));
    li.appendChild(head);
    li.appendChild(el("div", "reply"));
    li.appendChild(el("div", "stages"));
    list.appendChild(li);
    return li;
  }

  // stageBox is a run's toggle, placed among the others by stage, then
  // invocation, whatever order they started in.
  function stageBox(stages, d) {
    var box = el("details", "stage");
    box.dataset.run = d.run_id;
    box.dataset.order = String(d.stage * 10000 + d.invocation);
    var summary = el("summary");
    summary.appendChild(document.createTextNode("Stage " + (d.stage + 1) + (d.invocation > 0 ? "." + (d.invocation + 1) : "") + ": " + d.command + " "));
    summary.appendChild(el("span", "badge status-running", "running"));
    box.appendChild(summary);
    box.appendChild(el("pre", "output"));
    var after = null;
    Array.prototype.some.call(stages.children, function (c) {
      if (Number(c.dataset.order) > Number(box.dataset.order)) { after = c; return true; }
      return false;
    });
    stages.insertBefore(box, after);
    return box;
  }

  // follow streams one request into its entry; the promise settles when
  // the request has ended or the stream broke.
  function follow(li) {
    return new Promise(function (done) {
      var id = li.dataset.request;
      var status = li.querySelector(".status");
      var reply = li.querySelector(".reply");
      var stages = li.querySelector(".stages");
      var runs = {};
      var source = new EventSource("/console/requests/" + encodeURIComponent(id) + "/events");
      function on(name, fn) {
        source.addEventListener(name, function (ev) { fn(JSON.parse(ev.data)); });
      }
      on("run", function (d) {
        runs[d.run_id] = stageBox(stages, d);
        status.textContent = "running " + d.command + "…";
        status.classList.remove("waiting");
      });
      on("wait", function (d) {
        status.textContent = d.text;
        status.classList.add("waiting");
      });
      on("chunk", function (d) {
        var box = runs[d.run_id];
        if (!box) return;
        box.querySelector(".output").appendChild(el("span", d.stream === "stderr" ? "stderr" : "", d.text));
      });
      on("run_end", function (d) {
        var box = runs[d.run_id];
        if (!box) return;
        var badge = box.querySelector("summary .badge");
        badge.className = "badge status-" + d.status;
        badge.textContent = d.status;
        var a = el("a", "", "transcript");
        a.href = "/runs/" + encodeURIComponent(d.run_id) + "/transcript";
        box.querySelector("summary").appendChild(document.createTextNode(" "));
        box.querySelector("summary").appendChild(a);
      });
      on("reply", function (d) {
        // html is the reply as Logbook's renderer wrote it for the web,
        // every value in it escaped; without it, the text is shown.
        if (d.html) {
          reply.innerHTML = d.html;
          reply.classList.add("rendered");
        } else {
          reply.textContent = d.text;
        }
        reply.classList.toggle("failed", !!d.failed);
      });
      on("end", function (d) {
        source.close();
        status.textContent = "";
        status.classList.remove("waiting");
        status.appendChild(el("span", "badge status-" + d.status, d.status));
        done();
      });
      source.onerror = function () {
        // A finished stream closes too; only an unfinished one is an error.
        if (source.readyState !== EventSource.CLOSED) {
          source.close();
          status.textContent = "the stream broke: see the request's page";
        }
        done();
      };
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    var body = new URLSearchParams();
    body.set("text", text);
    fetch("/console", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body,
      credentials: "same-origin"
    }).then(function (resp) {
      if (!resp.ok) {
        // The server answers a script with one sentence of plain text.
        return resp.text().then(function (msg) { throw new Error(msg.trim() || resp.statusText); });
      }
      return resp.json();
    }).then(function (d) {
      input.value = "";
      follow(newEntry(d.request_id, d.text));
    }).catch(function (err) {
      var li = newEntry("", text);
      var status = li.querySelector(".status");
      status.classList.add("error-note");
      status.textContent = "not sent: " + err.message;
    });
  });

  // The session's earlier commands, on a reload: those that have ended
  // first, one after another (each stream closes at once), then those
  // still running, side by side, so a slow one never holds up the rest.
  var earlier = Array.prototype.slice.call(list.querySelectorAll("li.entry"));
  var ended = earlier.filter(function (li) { return li.hasAttribute("data-ended"); });
  var running = earlier.filter(function (li) { return !li.hasAttribute("data-ended"); });
  ended.reduce(function (p, li) { return p.then(function () { return follow(li); }); }, Promise.resolve())
    .then(function () { running.forEach(follow); });
})();
