// jitkey web console: progressive enhancement only. Every page works
// without this file except the automatic sign-in and the live audit view.
"use strict";
(function () {
  var main = document.getElementById("main");
  var csrf = main && main.getAttribute("data-csrf");

  // Sign-in: ask the console whether the phone approved; renew the code.
  var si = document.querySelector("[data-signin]");
  if (si) {
    var state = document.getElementById("signin-state");
    var expires = parseInt(si.getAttribute("data-expires"), 10) * 1000;
    var renewAt = Date.now() + Math.max(10000, expires - Date.now() - 30000);
    var poll = function () {
      if (Date.now() > renewAt) { location.replace("/signin"); return; }
      fetch("/signin/status", { method: "POST", credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          if (s.state === "approved") { state.textContent = "Approved. Signing in…"; location.replace(s.next); return; }
          if (s.state === "denied") { state.textContent = "Denied on the phone. A new code follows."; setTimeout(function () { location.replace("/signin"); }, 3000); return; }
          if (s.state === "expired") { location.replace("/signin"); return; }
          setTimeout(poll, 1000);
        })
        .catch(function () { state.textContent = "The console cannot be reached; retrying…"; setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }

  // Confirm destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });

  // Copy buttons.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var t = document.getElementById(b.getAttribute("data-copy"));
      t.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(t.value); } else { document.execCommand("copy"); }
      b.textContent = "Copied";
    });
  });

  // The share dialog is modal: focus stays in it, Escape cancels.
  document.querySelectorAll("dialog[data-modal]").forEach(function (d) {
    if (typeof d.showModal === "function") {
      d.close();
      d.showModal();
      d.addEventListener("cancel", function () {
        var c = d.querySelector("#share-cancel");
        if (c) { location.assign(c.getAttribute("href")); }
      });
    }
  });

  // Live audit: new records appear at the top without a reload.
  var table = document.querySelector("table[data-audit]");
  if (table) {
    var body = document.getElementById("audit-rows");
    var live = document.getElementById("audit-live");
    var q = table.getAttribute("data-query");
    var fresh = 0;
    var cell = function (tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); };
    var tick = function () {
      fetch("/audit/rows" + (q ? "?" + q : ""), { credentials: "same-origin", headers: { "X-CSRF-Token": csrf || "" } })
        .then(function (r) {
          if (r.status === 401) { location.assign("/signin?why=ended"); throw new Error("signed out"); }
          return r.json();
        })
        .then(function (data) {
          var added = [];
          data.rows.forEach(function (row) {
            if (body.querySelector('tr[data-key="' + row.key + '"]')) { return; }
            var tr = document.createElement("tr");
            tr.setAttribute("data-key", row.key);
            tr.className = "new";
            [row.time, row.tenant, row.device, row.event, row.text].forEach(function (t) { cell(tr, t); });
            added.push(tr);
          });
          for (var i = added.length - 1; i >= 0; i--) { body.insertBefore(added[i], body.firstChild); }
          if (added.length) {
            fresh += added.length;
            live.textContent = fresh + " new record" + (fresh === 1 ? "" : "s") + " since this page opened.";
            var empty = document.getElementById("audit-empty");
            if (empty) { empty.remove(); }
          }
          setTimeout(tick, 2000);
        })
        .catch(function () { setTimeout(tick, 5000); });
    };
    setTimeout(tick, 2000);
  }
})();
