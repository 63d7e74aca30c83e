// The "/" key focuses the search box in the navigation, as on GitHub,
// unless the person is typing somewhere already.
(function () {
  "use strict";
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = document.getElementById("nav-q");
    if (!box) return;
    e.preventDefault();
    box.focus();
    box.select();
  });
})();
