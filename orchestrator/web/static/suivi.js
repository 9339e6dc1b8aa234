// Follows a request while it moves: fetches the server-rendered status part of the page every few
// seconds and swaps it in (the container is aria-live, so screen readers hear the change). It stops
// when the server says the request has reached a final state. Without JavaScript, reloading works.
(function () {
  "use strict";
  var box = document.getElementById("suivi");
  if (!box || !box.dataset.follow) { return; }
  var source = box.dataset.follow;
  var delay = 2000;

  function follow() {
    fetch(source, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var final = response.headers.get("X-Ruche-Final") === "1";
        return response.text().then(function (html) { return { html: html, final: final }; });
      })
      .then(function (part) {
        if (box.innerHTML.trim() !== part.html.trim()) { box.innerHTML = part.html; }
        delay = 2000;
        if (!part.final) { window.setTimeout(follow, delay); }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);  // the server restarts or the network drops: slow down, go on
        window.setTimeout(follow, delay);
      });
  }
  window.setTimeout(follow, delay);
})();
