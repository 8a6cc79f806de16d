// The moderation dialog of the topic page: htmx loads the confirmation form (the same
// one the confirmation page shows without JavaScript) into #mod-dialog-body; this opens
// the dialog around it and closes it on Cancel. No inline script: the CSP forbids it.
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail && event.detail.target;
  if (!target || target.id !== "mod-dialog-body") return;
  var dialog = document.getElementById("mod-dialog");
  if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
  var reason = target.querySelector("textarea");
  if (reason) reason.focus();
});
document.addEventListener("click", function (event) {
  var close = event.target.closest && event.target.closest("#mod-dialog [data-close-dialog]");
  if (!close) return;
  event.preventDefault();
  document.getElementById("mod-dialog").close();
});
