// Live updates (web/pages/live.py): a topic page hears of its new replies and a board
// page of its new topics over one EventSource, which reconnects by itself with the last
// event id, so nothing is missed. The count shows in #live-notice; "Show" loads new
// replies in place on a topic's last page (from their permalinks, the page's own
// markup), and elsewhere goes to them. Without JavaScript the notice stays hidden.
(function () {
  "use strict";
  var notice = document.getElementById("live-notice");
  if (!notice || typeof window.EventSource !== "function") { return; }
  var kind = notice.getAttribute("data-live-kind");
  var inPlace = notice.getAttribute("data-live-in-place") === "1";
  var count = notice.querySelector(".live-count");
  var button = notice.querySelector(".live-show");
  var pending = [];
  var stale = false;

  function onPage(id) { return document.getElementById("p-" + id) !== null; }

  function refresh() {
    pending = pending.filter(function (item) { return !onPage(item.id); });
    if (stale) {
      count.textContent = "This page is out of date.";
      button.textContent = "Reload";
    } else if (pending.length === 0) {
      notice.hidden = true;
      return;
    } else {
      var noun = kind === "reply" ? (pending.length === 1 ? "new reply" : "new replies")
        : (pending.length === 1 ? "new topic" : "new topics");
      count.textContent = pending.length + " " + noun;
      button.textContent = kind === "reply" && inPlace ? "Show" : "Go to them";
    }
    notice.hidden = false;
  }

  function take(event) {
    var item;
    try { item = JSON.parse(event.data); } catch (e) { return; }
    if (onPage(item.id)) { return; }
    if (pending.some(function (p) { return p.id === item.id; })) { return; }
    pending.push(item);
    refresh();
  }

  function loadOne(item) {
    return fetch(item.url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { return; }
      return response.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var article = doc.getElementById("p-" + item.id);
        var list = document.querySelector("ol.posts");
        if (!article || !list || onPage(item.id)) { return; }
        var entry = document.importNode(article.closest("li") || article, true);
        list.appendChild(entry);
        if (window.htmx) { window.htmx.process(entry); }
        document.dispatchEvent(new CustomEvent("atbb:content", { detail: entry }));
      });
    });
  }

  button.addEventListener("click", function () {
    if (stale || kind !== "reply" || !inPlace) {
      window.location.href = stale || kind !== "reply" ? window.location.pathname
        : pending[0].url;
      return;
    }
    var batch = pending.slice();
    button.disabled = true;
    batch.reduce(function (done, item) {
      return done.then(function () { return loadOne(item); });
    }, Promise.resolve()).catch(function () { /* a failed load leaves it pending */ })
      .then(function () { button.disabled = false; refresh(); });
  });

  var url = notice.getAttribute("data-live-url") + "?after=" +
    encodeURIComponent(notice.getAttribute("data-live-after") || "");
  var source = new EventSource(url);
  source.addEventListener(kind, take);
  source.addEventListener("reload", function () { stale = true; refresh(); });
  window.addEventListener("pagehide", function () { source.close(); });
}());
