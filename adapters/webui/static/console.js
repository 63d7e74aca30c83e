// The console: sends a command without leaving the page and streams its
// output in over Server-Sent Events. Without scripts the form still works
// and leads to the request's page.
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
    li.dataset.request = id;
    var head = el("div", "entry-head");
    head.appendChild(el("code", "typed", text));
    head.appendChild(document.createTextNode(" "));
    var link = el("a", "", "request");
    link.href = "/requests/" + id;
    head.appendChild(link);
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", "status", "running…"));
    li.appendChild(head);
    li.appendChild(el("pre", "output"));
    li.appendChild(el("div", "reply"));
    list.appendChild(li);
    return li;
  }

  // follow streams one request into its entry; the promise settles when
  // the request has ended or the stream broke.
  function follow(li) {
    return new Promise(function (done) {
      var id = li.dataset.request;
      var out = li.querySelector(".output");
      var status = li.querySelector(".status");
      var reply = li.querySelector(".reply");
      var runs = {};
      var source = new EventSource("/console/requests/" + encodeURIComponent(id) + "/events");
      function on(name, fn) {
        source.addEventListener(name, function (ev) { fn(JSON.parse(ev.data)); });
      }
      on("run", function (d) {
        runs[d.run_id] = d.command;
        status.textContent = "running " + d.command + "…";
      });
      on("wait", function (d) {
        status.textContent = d.text;
        status.classList.add("waiting");
      });
      on("chunk", function (d) {
        var span = el("span", d.stream === "stderr" ? "stderr" : "", d.text);
        out.appendChild(span);
      });
      on("run_end", function (d) {
        var a = el("a", "", (runs[d.run_id] || "run") + ": " + d.status);
        a.href = "/runs/" + encodeURIComponent(d.run_id) + "/transcript";
        status.textContent = "";
        status.appendChild(a);
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
        // A request that ended before a run did still says "running…".
        if (!status.querySelector("a")) {
          status.textContent = "";
        }
        var s = el("span", "status-" + d.status, d.status);
        status.appendChild(document.createTextNode(" "));
        status.appendChild(s);
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
        return resp.text().then(function (msg) { throw new Error(msg || resp.statusText); });
      }
      return resp.json();
    }).then(function (d) {
      input.value = "";
      follow(newEntry(d.request_id, d.text));
    }).catch(function (err) {
      var li = newEntry("", text);
      li.querySelector(".status").textContent = "not sent: " + err.message;
    });
  });

  // The session's earlier commands: their output again, one after another
  // so they do not hold every connection at once.
  var earlier = Array.prototype.slice.call(list.querySelectorAll("li.entry"));
  earlier.reduce(function (p, li) { return p.then(function () { return follow(li); }); }, Promise.resolve());
})();
