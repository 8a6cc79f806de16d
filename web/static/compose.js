// The character counter under each writing field: graphemes as the lexicon counts them
// (Intl.Segmenter where the browser has it, code points elsewhere), against the limit in
// data-max-graphemes. Without JavaScript the server says the same when the form is sent.
(function () {
  "use strict";
  var segmenter = typeof Intl !== "undefined" && Intl.Segmenter
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function count(text) {
    if (segmenter) {
      var n = 0;
      for (var _ of segmenter.segment(text)) { n += 1; }
      return n;
    }
    return Array.from(text).length;
  }

  function update(field) {
    var max = parseInt(field.getAttribute("data-max-graphemes"), 10);
    var output = document.getElementById(field.getAttribute("aria-describedby"));
    if (!output || !max) { return; }
    var used = count(field.value);
    output.textContent = used + " / " + max;
    output.classList.toggle("over", used > max);
  }

  function all(root) {
    (root || document).querySelectorAll("[data-max-graphemes]").forEach(update);
  }

  document.addEventListener("input", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-max-graphemes")) {
      update(event.target);
    }
  });
  document.addEventListener("DOMContentLoaded", function () { all(document); });
  document.addEventListener("htmx:load", function (event) { all(event.target); });
}());
