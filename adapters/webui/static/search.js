// The "/" key focuses the search box in the navigation, as on GitHub,
// unless the person is typing somewhere already.
(function () {
  "use strict";
  var focused = false; // "/" moved the focus: its character is not typed
  document.addEventListener("keydown", function (e) {
    focused = false;
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = document.getElementById("nav-q");
    if (!box) return;
    e.preventDefault();
    box.focus();
    box.select();
    focused = true;
  });
  // A keypress still sent after the prevented keydown (some synthetic
  // keyboards send one) would type the "/" into the box.
  document.addEventListener("keypress", function (e) {
    if (focused && e.key === "/") e.preventDefault();
    focused = false;
  });
})();
