// The light/dark choice without a page reload. Without JavaScript the same form posts to
// /theme, which sets the same cookie and redirects back.
(function () {
  "use strict";
  var form = document.querySelector("form.theme-form");
  if (!form) { return; }
  var select = form.querySelector("select[name=theme]");
  form.addEventListener("submit", function (event) {
    var choice = select.value;
    event.preventDefault();
    if (choice === "light" || choice === "dark") {
      document.documentElement.setAttribute("data-theme", choice);
      document.cookie = "theme=" + choice + "; path=/; max-age=31536000; samesite=lax";
    } else {
      document.documentElement.removeAttribute("data-theme");
      document.cookie = "theme=; path=/; max-age=0; samesite=lax";
    }
  });
  select.addEventListener("change", function () { form.requestSubmit(); });
}());
