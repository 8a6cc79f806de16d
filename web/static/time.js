// Times as a reader expects them: every <time datetime> shows "3 hours ago", with the
// exact time in the reader's own zone on hover (title). The server writes the exact UTC
// time as the text, which is what a reader without JavaScript sees.
(function () {
  "use strict";
  var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
               ["hour", 3600], ["minute", 60]];
  var format = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function relative(seconds) {
    var ago = Math.abs(seconds);
    for (var i = 0; i < units.length; i += 1) {
      if (ago >= units[i][1]) {
        var count = Math.round(seconds / units[i][1]);
        if (format) { return format.format(count, units[i][0]); }
        var n = Math.abs(count);
        var label = n + " " + units[i][0] + (n === 1 ? "" : "s");
        return count <= 0 ? label + " ago" : "in " + label;
      }
    }
    return "just now";
  }

  function update(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment.getTime())) { return; }
      if (!element.hasAttribute("data-exact")) {
        element.setAttribute("data-exact", element.textContent);
        element.setAttribute("title", moment.toLocaleString());
      }
      element.textContent = relative((moment.getTime() - now) / 1000);
    });
  }

  function start() {
    update(document);
    window.setInterval(function () { update(document); }, 60000);
    document.addEventListener("atbb:content", function (event) { update(event.detail); });
    document.body.addEventListener("htmx:afterSwap", function () { update(document); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
