// Every page: keeps "3 min ago" current while the page stays open. The
// absolute UTC time is in each <time>'s title; without scripts the text
// stays as the server wrote it.
(function () {
  "use strict";
  function ago(ms) {
    var future = ms < 0, s = Math.abs(ms) / 1000, text;
    if (s < 10) return "just now";
    if (s < 60) text = Math.floor(s) + " s";
    else if (s < 3600) text = Math.floor(s / 60) + " min";
    else if (s < 172800) text = Math.floor(s / 3600) + " h";
    else text = Math.floor(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }
  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time.rel[datetime]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (!isNaN(at)) t.textContent = ago(now - at);
    });
  }
  window.logbookRefreshTimes = refresh;
  setInterval(refresh, 30000);
})();
