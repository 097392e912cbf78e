// The Batches pages.
//
// - New batch: the "Paste lines / Upload a file" switch shows one source at a time, and the
//   number of lines is counted as they are typed.
// - A batch's page (and running rows of the list) poll the batch's progress view every
//   couple of seconds and update the progress bar, the counts, the item rows, the actions
//   and the ZIP link in place; polling stops once the batch has ended and its ZIP is written.
// - Item audio plays in the page's player.
(function () {
  "use strict";

  var DEFAULT_POLL_MS = 1500;

  // ---- New batch --------------------------------------------------------------------------

  function setupCreateForm(form) {
    var radios = form.querySelectorAll("input[name=source]");
    var panels = form.querySelectorAll("[data-source-panel]");
    var lines = form.querySelector("#id_lines");
    var count = form.querySelector("#line-count");

    function source() {
      var checked = form.querySelector("input[name=source]:checked");
      return checked ? checked.value : "lines";
    }

    function showSource() {
      var current = source();
      panels.forEach(function (panel) { panel.hidden = panel.dataset.sourcePanel !== current; });
    }

    function countLines() {
      if (!lines || !count) return;
      var items = lines.value.split(/\r?\n/).filter(function (line) { return line.trim() !== ""; }).length;
      count.textContent = items === 1 ? "1 item" : items.toLocaleString() + " items";
    }

    radios.forEach(function (radio) { radio.addEventListener("change", showSource); });
    if (lines) lines.addEventListener("input", countLines);
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.classList.add("is-busy");
        button.setAttribute("aria-busy", "true");
      }
    });
    showSource();
    countLines();
  }

  var createForm = document.querySelector("form[data-batch-form]");
  if (createForm) setupCreateForm(createForm);

  // ---- Progress -----------------------------------------------------------------------------

  function setTone(badge, tone) {
    badge.className = "badge" + (tone ? " badge-" + tone : "");
  }

  function updateBar(root, state) {
    var bar = root.querySelector("[data-progress-bar]");
    if (bar) {
      bar.setAttribute("aria-valuenow", String(state.percent_whole));
      bar.setAttribute("aria-valuetext", state.percent_whole + " % · " + state.done + " of " + state.total + " items");
      bar.classList.toggle("is-finished", state.finished);
      var fill = bar.querySelector("[data-progress-fill]");
      fill.style.width = state.percent + "%";
      fill.className = "progress-fill progress-" + (state.tone || "accent");
    }
    var text = root.querySelector("[data-progress-text]");
    if (text) text.textContent = state.done.toLocaleString() + " of " + state.total.toLocaleString() + " items";
    var status = root.querySelector("[data-batch-status]") || document.getElementById("batch-status");
    if (status) {
      status.textContent = state.status_label;
      setTone(status, state.tone);
    }
    var link = root.querySelector("[data-export-link]");
    if (link) {
      if (state.export.url) {
        link.href = state.export.url;
        link.hidden = false;
        var size = link.querySelector("[data-export-size]");
        if (size) size.textContent = state.export.size;
      } else {
        link.hidden = true;
      }
    }
  }

  function exportNote(state) {
    if (state.export.status === "pending") return "Writing the ZIP…";
    if (state.export.status === "failed") return "The ZIP could not be written: " + (state.export.error || "unknown error");
    if (!state.finished) return "The ZIP is written when every item has finished.";
    return "";
  }

  function updateItems(items) {
    items.forEach(function (item) {
      var row = document.querySelector("tr[data-item-id='" + item.id + "']");
      if (!row) return;
      var actions = row.querySelector("[data-item-actions]");
      var unchanged = row.dataset.itemStatus === item.status && actions.hidden === !item.audio_url;
      if (unchanged) return;
      row.dataset.itemStatus = item.status;
      var badge = row.querySelector("[data-item-badge]");
      badge.textContent = item.status_label;
      setTone(badge, item.tone);
      var error = row.querySelector("[data-item-error]");
      error.textContent = item.error || "";
      error.hidden = !item.error;
      row.querySelector("[data-item-seconds]").textContent = item.seconds ? item.seconds + " s" : "";
      actions.hidden = !item.audio_url;
      if (item.audio_url) {
        actions.querySelector("[data-play]").dataset.play = item.audio_url;
        actions.querySelector("[data-download]").href = item.download_url;
      }
    });
  }

  function updateDetail(card, state) {
    updateBar(card, state);
    document.getElementById("progress-percent").textContent = state.percent_whole + " %";
    document.getElementById("progress-eta").textContent = state.eta_text;
    Object.keys(state.counts).forEach(function (name) {
      var counter = card.querySelector("[data-count='" + name + "']");
      if (counter) counter.textContent = state.counts[name].toLocaleString();
    });
    document.getElementById("export-note").textContent = exportNote(state);
    document.getElementById("cancel-form").hidden = !state.can_cancel;
    document.getElementById("retry-form").hidden = !state.can_retry;
    if (state.items) updateItems(state.items);
  }

  function settled(state) {
    return state.finished && state.export.status !== "pending" && state.export.status !== "none";
  }

  function poll(root, update) {
    var url = root.dataset.progressUrl;
    var every = parseInt(root.dataset.pollMs, 10) || DEFAULT_POLL_MS;
    var failures = 0;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (state) {
          failures = 0;
          update(root, state);
          // An ended batch only waits for its ZIP: ask less often.
          if (!settled(state)) setTimeout(tick, state.finished ? every * 3 : every);
        })
        .catch(function () {
          failures += 1;
          if (failures < 20) setTimeout(tick, every * 2);
        });
    }
    tick();
  }

  var detail = document.querySelector(".batch-progress-card[data-batch-live]");
  if (detail) poll(detail, updateDetail);
  document.querySelectorAll("tr[data-batch-live]").forEach(function (row) { poll(row, updateBar); });

  // ---- Item audio -----------------------------------------------------------------------------

  var player = document.getElementById("item-player");
  var audio = document.getElementById("item-audio");
  var status = document.getElementById("item-player-status");
  if (player && audio) {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-play]");
      if (!button || !button.dataset.play) return;
      player.hidden = false;
      audio.src = button.dataset.play;
      status.textContent = "Playing · " + button.dataset.title;
      audio.play().catch(function () {
        status.textContent = "That audio could not be played.";
      });
    });
  }
})();
