// Progressive enhancement only: every page works without this file.
// While a phone request or an activation is pending, ask the server (long poll) and
// continue by submitting the page's own form (with its CSRF token) once it is answered.
(function () {
  "use strict";
  function poll(form, url, done, continueAction) {
    var status = form.querySelector("[data-status]");
    var stopped = false;
    function once() {
      if (stopped) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { status: "error" }; })
        .then(function (body) {
          if (done(body.status)) {
            stopped = true;
            var button = form.querySelector('button[value="' + continueAction + '"]');
            if (button) { button.click(); } else { form.submit(); }
          } else if (body.status === "pending" || body.status === "none") {
            window.setTimeout(once, 1000);
          } else if (status) {
            window.setTimeout(once, 3000);
          }
        })
        .catch(function () { window.setTimeout(once, 3000); });
    }
    once();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var f = document.querySelector("form[data-poll]");
    if (f) {
      poll(f, f.getAttribute("data-poll"), function (s) { return s !== "pending" && s !== "none" && s !== "error"; }, "check");
    }
    var a = document.querySelector("form[data-poll-activation]");
    if (a) {
      poll(a, a.getAttribute("data-poll-activation"), function (s) { return s === "completed"; }, "complete");
    }
  });
})();
