// Parla dashboard: small enhancements shared by every page. Every page works without them.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  // Phone width: the navigation opens from the menu button (a #site-nav link without scripts).
  function setupMenu() {
    var toggle = document.querySelector(".menu-toggle");
    if (!toggle) return;
    toggle.setAttribute("role", "button");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      var open = document.body.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && document.body.classList.contains("nav-open")) {
        document.body.classList.remove("nav-open");
        toggle.setAttribute("aria-expanded", "false");
        toggle.focus();
      }
    });
  }

  // The workspace switcher submits as soon as another workspace is chosen.
  function setupAutosubmit() {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-http installations have no async clipboard: fall back to a selection copy.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy failed"));
    });
  }

  function setupCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var label = button.querySelector("span");
      var original = label ? label.textContent : "";
      button.addEventListener("click", function () {
        var input = document.querySelector(button.getAttribute("data-copy"));
        if (!input) return;
        copyText(input.value).then(function () {
          if (label) label.textContent = "Copied";
          button.classList.add("is-done");
        }, function () {
          input.type = "text";
          input.select();
          if (label) label.textContent = "Press Ctrl+C";
        });
        setTimeout(function () {
          if (label) label.textContent = original;
          button.classList.remove("is-done");
        }, 2500);
      });
    });
  }

  function setupReveal() {
    document.querySelectorAll("[data-reveal]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.querySelector(button.getAttribute("data-reveal"));
        if (!input) return;
        var show = input.type === "password";
        input.type = show ? "text" : "password";
        button.textContent = show ? "Hide" : "Show";
        button.setAttribute("aria-pressed", show ? "true" : "false");
      });
    });
  }

  // Destructive forms ask first, in a dialog that is keyboard-usable (Esc cancels).
  function setupConfirm() {
    var dialog = document.getElementById("confirm-dialog");
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.confirmed === "1") return;
        if (!dialog || typeof dialog.showModal !== "function") {
          if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
          return;
        }
        event.preventDefault();
        document.getElementById("confirm-message").textContent = form.getAttribute("data-confirm");
        document.getElementById("confirm-title").textContent = form.getAttribute("data-confirm-label") || "Are you sure?";
        document.getElementById("confirm-ok").textContent = form.getAttribute("data-confirm-label") || "Confirm";
        dialog.returnValue = "";
        dialog.onclose = function () {
          if (dialog.returnValue === "confirm") {
            form.dataset.confirmed = "1";
            form.submit();
          }
        };
        dialog.showModal();
      });
    });
  }

  ready(function () {
    setupMenu();
    setupAutosubmit();
    setupCopy();
    setupReveal();
    setupConfirm();
  });

  window.Parla = { copyText: copyText, ready: ready };
})();
