/* Call detail: follow a click-to-call request until the listener reports how it went. */
(function () {
  "use strict";

  var node = document.getElementById("callback-request");
  if (!node || node.getAttribute("data-final") === "true") {
    return;
  }
  var url = node.getAttribute("data-url");
  var result = node.querySelector(".result");
  var detail = node.querySelector(".detail");
  var deadline = Date.now() + 3 * 60 * 1000;

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data) {
          result.textContent = String(data.result || "");
          detail.textContent = String(data.detail || "");
          if (data.final) {
            node.setAttribute("data-final", "true");
            return;
          }
        }
        if (Date.now() < deadline) {
          window.setTimeout(poll, 2000);
        }
      })
      .catch(function () {
        if (Date.now() < deadline) {
          window.setTimeout(poll, 5000);
        }
      });
  }

  window.setTimeout(poll, 1000);
})();
