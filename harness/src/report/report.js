(function () {
  "use strict";
  var panel = document.getElementById("op-panel");
  var text = document.getElementById("op-panel-text");
  var current = null;
  function show(el) {
    if (current) current.classList.remove("hl");
    current = el;
    el.classList.add("hl");
    var t = el.querySelector("title");
    text.textContent = t ? t.textContent : el.id;
    panel.hidden = false;
  }
  function fromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (id.indexOf("op-") !== 0) return;
    var el = document.getElementById(id);
    if (!el) return;
    show(el);
    el.scrollIntoView({ block: "center", inline: "center" });
  }
  window.addEventListener("hashchange", fromHash);
  document.getElementById("op-panel-close").addEventListener("click", function () {
    panel.hidden = true;
  });
  var tl = document.querySelector("svg.timeline");
  if (tl) {
    tl.addEventListener("click", function (e) {
      var el = e.target;
      if (el && el.classList && el.classList.contains("op")) show(el);
    });
  }
  fromHash();
  var d = document.getElementById("script-errors");
  if (window.__ladonErrors.length) {
    d.hidden = false;
    d.textContent = window.__ladonErrors.join("\n");
  }
  document.documentElement.setAttribute("data-ladon-ready", "yes");
})();
