// The history: rows of requests still running follow them over
// Server-Sent Events and are replaced, as the server renders them, each
// time they change, until they end.
(function () {
  "use strict";
  var table = document.getElementById("history-table");
  if (!table || !window.EventSource) return;
  var ids = Array.prototype.map.call(table.querySelectorAll("tr[data-active]"), function (tr) {
    return tr.dataset.request;
  });
  if (ids.length === 0) return;
  var q = new URLSearchParams();
  ids.forEach(function (id) { q.append("request", id); });
  var source = new EventSource("/history/events?" + q.toString());
  source.addEventListener("row", function (ev) {
    var d = JSON.parse(ev.data);
    var old = table.querySelector('tr[data-request="' + CSS.escape(d.request_id) + '"]');
    if (!old) return;
    var body = document.createElement("tbody");
    body.innerHTML = d.html; // rendered by the server's template, every value escaped
    var row = body.querySelector("tr");
    if (!row) return;
    if (old.outerHTML !== row.outerHTML) row.classList.add("updated");
    old.replaceWith(row);
    if (window.logbookRefreshTimes) window.logbookRefreshTimes();
  });
  source.addEventListener("end", function () { source.close(); });
  source.onerror = function () {
    // The server closes the stream when every row has ended.
    if (source.readyState === EventSource.CLOSED) return;
    source.close();
  };
})();
