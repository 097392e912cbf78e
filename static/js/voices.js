// The Voices pages: previews, enrollment progress, and recordings by drag and drop.
//
// - Preview links fetch the voice's sample (the page's session-authenticated preview view)
//   and play it in the page's player; while the sample is being made they ask again.
// - Voices that are enrolling are polled every few seconds; the page reloads when one is done.
// - Upload forms: files dropped on the zone (or chosen with the file input, which is also how
//   keyboard users add them) are each sent to the check view, which validates them and
//   reports their quality without storing anything. Rejected files are dropped from the
//   form; the rest go with the ordinary multipart submit, where the server checks them again.
(function () {
  "use strict";

  var POLL_MS = 3000;
  var PREVIEW_RETRIES = 30;

  function csrfToken() {
    var input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function explain(payload, status) {
    if (payload && payload.message) return payload.message;
    return "Something went wrong (HTTP " + status + "). Please try again.";
  }

  // ---- Previews ------------------------------------------------------------------------

  var player = document.getElementById("preview-player");
  var audio = document.getElementById("preview-audio");
  var previewStatus = document.getElementById("preview-status");
  var objectUrl = null;
  var previewToken = 0;

  function sayPreview(message, state) {
    previewStatus.textContent = message;
    player.dataset.state = state || "";
  }

  function playPreview(link) {
    var token = ++previewToken;
    var title = link.dataset.title || "voice";
    player.hidden = false;
    sayPreview("Making a sample of " + title + "…", "loading");
    link.setAttribute("aria-busy", "true");
    var attempts = 0;

    function attempt() {
      attempts += 1;
      fetch(link.getAttribute("href"), { credentials: "same-origin", headers: { "Accept": "audio/*, application/json" } })
        .then(function (response) {
          if (token !== previewToken) return null;
          var type = response.headers.get("Content-Type") || "";
          if (response.ok && response.status === 200 && type.indexOf("audio/") === 0) {
            return response.blob().then(function (blob) {
              if (token !== previewToken) return;
              if (objectUrl) URL.revokeObjectURL(objectUrl);
              objectUrl = URL.createObjectURL(blob);
              audio.src = objectUrl;
              sayPreview("Playing · " + title, "ready");
              link.removeAttribute("aria-busy");
              audio.play().catch(function () {});
            });
          }
          return response.json().catch(function () { return {}; }).then(function (payload) {
            if (token !== previewToken) return;
            if (response.status === 202 && attempts < PREVIEW_RETRIES) {
              sayPreview(payload.message || "The sample is still being made…", "loading");
              setTimeout(attempt, 2000);
              return;
            }
            link.removeAttribute("aria-busy");
            sayPreview(explain(payload, response.status), "error");
          });
        })
        .catch(function () {
          if (token !== previewToken) return;
          link.removeAttribute("aria-busy");
          sayPreview("The sample could not be loaded (network error).", "error");
        });
    }
    attempt();
  }

  if (player && audio) {
    document.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-preview]");
      if (!link) return;
      event.preventDefault();
      playPreview(link);
    });
  }

  // ---- Enrollment progress ---------------------------------------------------------------

  function pollStatus(box) {
    var url = box.dataset.statusUrl;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state) return;
          if (state.status !== "enrolling") {
            window.location.reload();
            return;
          }
          var percent = box.querySelector("[data-status-percent]");
          if (percent) percent.textContent = String(state.progress);
          var bar = box.querySelector("[role=progressbar]");
          if (bar) {
            bar.setAttribute("aria-valuenow", String(state.progress));
            bar.querySelector("span").style.width = state.progress + "%";
          }
          setTimeout(tick, POLL_MS);
        })
        .catch(function () { setTimeout(tick, POLL_MS * 2); });
    }
    setTimeout(tick, POLL_MS);
  }

  document.querySelectorAll("[data-voice-status][data-status=enrolling]").forEach(pollStatus);

  // ---- Recordings: drop zone, per-file checks --------------------------------------------

  function humanSize(bytes) {
    if (bytes >= 1000000) return (bytes / 1000000).toFixed(1) + " MB";
    return Math.max(1, Math.round(bytes / 1000)) + " KB";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function icon(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    var use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", "#i-" + name);
    svg.appendChild(use);
    return svg;
  }

  function setupUploadForm(form) {
    var input = form.querySelector(".dropzone-input");
    var zone = form.querySelector("[data-dropzone]");
    var list = form.querySelector("[data-upload-list]");
    if (!input || !zone || !list) return;
    var checkUrl = form.dataset.checkUrl;
    var entries = [];  // { file, state: "checking" | "ok" | "rejected" | "unchecked", node }

    // The input carries exactly the files that were not rejected.
    function syncInput() {
      if (typeof DataTransfer === "undefined") return;
      var transfer = new DataTransfer();
      entries.forEach(function (entry) {
        if (entry.state !== "rejected") transfer.items.add(entry.file);
      });
      input.files = transfer.files;
    }

    function setBadge(entry, text, tone) {
      var badge = entry.node.querySelector("[data-upload-badge]");
      badge.textContent = text;
      badge.className = "badge" + (tone ? " badge-" + tone : "");
    }

    function render(entry) {
      var item = element("li", "upload-item");
      item.dataset.state = "checking";
      var head = element("div", "upload-head");
      head.appendChild(icon("file-audio"));
      var title = element("div", "upload-title");
      title.appendChild(element("strong", "upload-name", entry.file.name));
      title.appendChild(element("span", "muted small block", humanSize(entry.file.size)));
      head.appendChild(title);
      var badge = element("span", "badge", "Checking…");
      badge.setAttribute("data-upload-badge", "");
      head.appendChild(badge);
      var remove = element("button", "btn btn-ghost btn-small");
      remove.type = "button";
      remove.appendChild(icon("x"));
      remove.appendChild(element("span", "", "Remove"));
      remove.appendChild(element("span", "visually-hidden", " " + entry.file.name));
      remove.addEventListener("click", function () {
        entries = entries.filter(function (other) { return other !== entry; });
        item.remove();
        syncInput();
        input.focus();
      });
      head.appendChild(remove);
      item.appendChild(head);
      var body = element("div", "upload-body");
      body.setAttribute("data-upload-body", "");
      item.appendChild(body);
      entry.node = item;
      list.appendChild(item);
    }

    function rejected(entry, message) {
      entry.state = "rejected";
      entry.node.dataset.state = "rejected";
      setBadge(entry, "Rejected", "danger");
      var body = entry.node.querySelector("[data-upload-body]");
      body.textContent = "";
      var alert = element("div", "alert alert-danger upload-error");
      alert.setAttribute("role", "alert");
      alert.appendChild(icon("alert"));
      var text = element("div", "");
      text.appendChild(element("p", "", message));
      text.appendChild(element("p", "small", "Not added. Nothing of it was stored."));
      alert.appendChild(text);
      body.appendChild(alert);
      syncInput();
    }

    function check(entry) {
      var data = new FormData();
      data.append("file", entry.file, entry.file.name);
      fetch(checkUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
        body: data
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (payload) {
          if (entries.indexOf(entry) === -1) return;  // removed meanwhile
          if (response.ok && payload.ok) {
            entry.state = "ok";
            entry.node.dataset.state = "ok";
            var hinted = payload.hints && payload.hints.length;
            setBadge(entry, hinted ? "Accepted, with advice" : "Accepted", hinted ? "warning" : "success");
            // Rendered by the server from the same report the voice keeps.
            entry.node.querySelector("[data-upload-body]").innerHTML = payload.html;
          } else {
            rejected(entry, explain(payload, response.status));
          }
        });
      }).catch(function () {
        if (entries.indexOf(entry) === -1) return;
        entry.state = "unchecked";
        entry.node.dataset.state = "unchecked";
        setBadge(entry, "Not checked", "warning");
        entry.node.querySelector("[data-upload-body]").textContent =
          "This file could not be checked now (network error); it is checked when you send the form.";
      });
    }

    function add(files) {
      Array.prototype.forEach.call(files, function (file) {
        var entry = { file: file, state: "checking", node: null };
        entries.push(entry);
        render(entry);
        check(entry);
      });
      syncInput();
    }

    input.addEventListener("change", function () {
      // The picker replaces the input's files: take them over, then list everything kept.
      var chosen = Array.prototype.slice.call(input.files);
      add(chosen);
    });

    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.remove("is-dragging");
      });
    });
    zone.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) add(event.dataTransfer.files);
    });

    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.classList.add("is-busy");
        button.setAttribute("aria-busy", "true");
      }
    });
  }

  var uploadForms = document.querySelectorAll("form[data-upload-form]");
  uploadForms.forEach(setupUploadForm);
  if (uploadForms.length) {
    // A file dropped just beside the zone must not make the browser leave the page to open it.
    ["dragover", "drop"].forEach(function (name) {
      document.addEventListener(name, function (event) {
        if (!event.target.closest || !event.target.closest("[data-dropzone]")) event.preventDefault();
      });
    });
  }
})();
