// The Speak page: live character count, voice details, and a player fed by the API.
//
// Generate POSTs the form's values as JSON to /api/v1/speech/stream with the session
// (CSRF header), the same endpoint API clients use. Playback:
// - MP3 plays WHILE it streams: chunks are appended to a MediaSource as they arrive.
// - Other streamable formats (WAV, Ogg, Opus) and browsers without MediaSource MP3 play
//   from a blob URL once the stream has ended (their containers cannot be fed to
//   MediaSource piecewise in Chromium).
// - FLAC and M4A cannot be streamed (their headers are written last), so they go through
//   /api/v1/speech and play once the file is complete.
(function () {
  "use strict";

  var form = document.getElementById("speak-form");
  if (!form) return;

  var STREAMABLE = { mp3: true, wav: true, ogg: true, opus: true };
  var text = document.getElementById("id_text");
  var countBox = document.getElementById("char-count");
  var countValue = document.getElementById("char-count-value");
  var warning = document.getElementById("quota-warning");
  var generate = document.getElementById("generate");
  var ssmlTools = document.getElementById("ssml-tools");
  var player = document.getElementById("player");
  var audio = document.getElementById("speak-audio");
  var toggle = document.getElementById("player-toggle");
  var seek = document.getElementById("player-seek");
  var current = document.getElementById("player-current");
  var durationLabel = document.getElementById("player-duration");
  var download = document.getElementById("player-download");
  var statusLine = document.getElementById("player-status");
  var historyBody = document.getElementById("history-body");
  var remaining = parseInt(form.dataset.remaining, 10) || 0;
  var perRequest = parseInt(form.dataset.requestLimit, 10) || 0;
  var busy = false;
  var objectUrl = null;
  var seeking = false;

  // ---- Editor -------------------------------------------------------------------------

  function mode() {
    var checked = form.querySelector("input[name=input_mode]:checked");
    return checked ? checked.value : "text";
  }

  // What the server bills: code points of the spoken text, whitespace runs counted once;
  // for SSML only the text between the tags (an entity counts as one character).
  function billable() {
    var value = text.value;
    if (mode() === "ssml") {
      value = value.replace(/<[^>]*>/g, " ").replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, "_");
    }
    return Array.from(value.replace(/\s+/g, " ").trim()).length;
  }

  function problem(count) {
    if (count === 0) return "Type some text to speak.";
    if (perRequest && count > perRequest) {
      return "That is " + count.toLocaleString() + " characters; one request takes up to " +
        perRequest.toLocaleString() + ". Split the text, or use a batch.";
    }
    if (count > remaining) {
      return "That needs " + count.toLocaleString() + " characters, but " + remaining.toLocaleString() +
        " are left this month.";
    }
    return "";
  }

  function updateCount() {
    var count = billable();
    countValue.textContent = count.toLocaleString();
    var message = count === 0 ? "" : problem(count);
    countBox.classList.toggle("is-over", !!message);
    warning.hidden = !message;
    warning.textContent = message;
  }

  function updateMode() {
    var ssml = mode() === "ssml";
    ssmlTools.hidden = !ssml;
    text.setAttribute("spellcheck", ssml ? "false" : "true");
    text.classList.toggle("mono", ssml);
    if (ssml && text.value.trim() && text.value.indexOf("<speak") === -1) {
      text.value = "<speak>\n" + text.value + "\n</speak>";
    }
    updateCount();
  }

  function insertAtCursor(before, after) {
    var start = text.selectionStart, end = text.selectionEnd;
    var selected = text.value.slice(start, end);
    text.setRangeText(before + selected + (after || ""), start, end, "end");
    if (!selected && after) text.setSelectionRange(start + before.length, start + before.length);
    text.focus();
    updateCount();
  }

  ssmlTools.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.insert) insertAtCursor(button.dataset.insert);
    if (button.dataset.wrap) {
      var parts = button.dataset.wrap.split("|");
      insertAtCursor(parts[0], parts[1]);
    }
  });
  text.addEventListener("input", updateCount);
  form.querySelectorAll("input[name=input_mode]").forEach(function (radio) {
    radio.addEventListener("change", updateMode);
  });

  // ---- Settings -----------------------------------------------------------------------

  var voiceSelect = document.getElementById("id_voice");
  function updateVoice() {
    var option = voiceSelect.options[voiceSelect.selectedIndex];
    if (!option) return;
    var details = document.getElementById("voice-details");
    details.querySelector("[data-voice-language]").textContent = option.dataset.language;
    details.querySelector("[data-voice-engine]").textContent = option.dataset.engine;
    var commercial = option.dataset.commercial === "true";
    var licence = details.querySelector("[data-voice-licence]");
    licence.textContent = (option.dataset.licence || "Unknown licence") + (commercial ? "" : " · non-commercial");
    licence.className = "badge " + (commercial ? "badge-success" : "badge-warning");
    details.querySelector("[data-voice-description]").textContent = option.dataset.description || "";
  }
  voiceSelect.addEventListener("change", updateVoice);

  function bindOutput(inputId, outputId, format) {
    var input = document.getElementById(inputId), output = document.getElementById(outputId);
    function show() { output.textContent = format(parseFloat(input.value)); }
    input.addEventListener("input", show);
    show();
  }
  bindOutput("id_speed", "speed-value", function (v) { return v.toFixed(2).replace(/0$/, "") + "×"; });
  bindOutput("id_pitch", "pitch-value", function (v) { return (v > 0 ? "+" : "") + v + " st"; });

  function value(name) {
    var field = form.elements[name];
    return field ? field.value : "";
  }

  function requestBody() {
    var body = { voice: value("voice"), format: value("format") };
    body[mode() === "ssml" ? "ssml" : "text"] = text.value;
    if (value("sample_rate")) body.sample_rate = parseInt(value("sample_rate"), 10);
    var speed = parseFloat(value("speed"));
    if (!isNaN(speed) && speed !== 1) body.speed = speed;
    var pitch = parseFloat(value("pitch"));
    if (!isNaN(pitch) && pitch !== 0) body.pitch = pitch;
    if (value("loudness")) body.loudness = parseFloat(value("loudness"));
    return body;
  }

  // ---- Player -------------------------------------------------------------------------

  function clock(seconds) {
    if (!isFinite(seconds) || seconds < 0) seconds = 0;
    var whole = Math.floor(seconds);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function say(message, state) {
    statusLine.textContent = message;
    player.dataset.state = state || "";
  }

  function setSource(url) {
    audio.pause();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = url.indexOf("blob:") === 0 ? url : null;
    audio.src = url;
    seek.value = 0;
    seek.max = 0;
    seek.disabled = true;
    current.textContent = "0:00";
    durationLabel.textContent = "0:00";
  }

  function enableControls() {
    toggle.disabled = false;
  }

  function setDownload(url) {
    if (url) {
      download.href = url;
      download.hidden = false;
      download.removeAttribute("aria-disabled");
    } else {
      download.hidden = true;
      download.setAttribute("aria-disabled", "true");
    }
  }

  function updateDuration() {
    var duration = audio.duration;
    if (isFinite(duration) && duration > 0) {
      seek.max = duration;
      seek.disabled = false;
      durationLabel.textContent = clock(duration);
    } else if (audio.buffered.length) {
      durationLabel.textContent = clock(audio.buffered.end(audio.buffered.length - 1));
    }
  }

  function updateToggle() {
    var playing = !audio.paused && !audio.ended;
    player.classList.toggle("is-playing", playing);
    toggle.setAttribute("aria-label", playing ? "Pause" : "Play");
  }

  toggle.addEventListener("click", function () {
    if (audio.paused || audio.ended) audio.play().catch(function () {});
    else audio.pause();
  });
  audio.addEventListener("play", updateToggle);
  audio.addEventListener("pause", updateToggle);
  audio.addEventListener("ended", updateToggle);
  audio.addEventListener("durationchange", updateDuration);
  audio.addEventListener("loadedmetadata", updateDuration);
  audio.addEventListener("progress", updateDuration);
  audio.addEventListener("timeupdate", function () {
    current.textContent = clock(audio.currentTime);
    if (!seeking) seek.value = audio.currentTime;
    seek.setAttribute("aria-valuetext", clock(audio.currentTime) + " of " + durationLabel.textContent);
  });
  seek.addEventListener("input", function () {
    seeking = true;
    current.textContent = clock(parseFloat(seek.value));
  });
  seek.addEventListener("change", function () {
    audio.currentTime = parseFloat(seek.value);
    seeking = false;
  });

  function whenIdle(buffer, next) {
    if (!buffer.updating) next();
    else buffer.addEventListener("updateend", next, { once: true });
  }

  function canStreamMp3() {
    return !!(window.MediaSource && MediaSource.isTypeSupported("audio/mpeg"));
  }

  // MP3 chunks go into a MediaSource as they arrive; playback starts with the first one.
  function playWhileStreaming(response) {
    return new Promise(function (resolve, reject) {
      var source = new MediaSource();
      setSource(URL.createObjectURL(source));
      source.addEventListener("sourceopen", function () {
        var buffer = source.addSourceBuffer("audio/mpeg");
        var reader = response.body.getReader();
        var started = false;
        buffer.addEventListener("error", function () { reject(new Error("the audio could not be decoded")); });
        function pump() {
          reader.read().then(function (chunk) {
            if (chunk.done) {
              whenIdle(buffer, function () {
                if (source.readyState === "open") source.endOfStream();
                resolve();
              });
              return;
            }
            whenIdle(buffer, function () {
              buffer.appendBuffer(chunk.value);
              if (!started) {
                started = true;
                enableControls();
                say("Playing while it streams…", "streaming");
                audio.play().catch(function () {});
              }
              pump();
            });
          }, reject);
        }
        pump();
      }, { once: true });
    });
  }

  function playWhole(blob, type) {
    setSource(URL.createObjectURL(new Blob([blob], { type: type.split(";")[0] })));
    enableControls();
    return audio.play().catch(function () {});
  }

  function explain(payload, status) {
    var fields = payload && payload.extra && payload.extra.fields;
    if (payload && payload.code === "quota_exceeded") {
      return "This month's character allowance is used up. It renews at the start of next month.";
    }
    if (payload && payload.code === "rate_limited") return "Too many requests right now; try again in a minute.";
    if (payload && payload.message) return payload.message;
    if (fields) {
      var name = Object.keys(fields)[0];
      return name + ": " + fields[name];
    }
    return "Something went wrong (HTTP " + status + "). Please try again.";
  }

  function setBusy(on) {
    busy = on;
    generate.disabled = on;
    generate.classList.toggle("is-busy", on);
    generate.querySelector("span").textContent = on ? "Generating…" : "Generate";
  }

  function audioUrl(jobId, forDownload) {
    return form.dataset.audioUrl.replace("/0/", "/" + jobId + "/") + (forDownload ? "?download=1" : "");
  }

  function refreshHistory() {
    return fetch(form.dataset.historyUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) historyBody.innerHTML = html; })
      .catch(function () {});
  }

  function spend(response) {
    var billed = parseInt(response.headers.get("X-Parla-Characters") || "0", 10);
    if (response.headers.get("X-Parla-Cache") === "hit") billed = 0;
    remaining = Math.max(0, remaining - billed);
    form.dataset.remaining = String(remaining);
    document.querySelectorAll("[data-quota-remaining]").forEach(function (label) {
      label.textContent = remaining.toLocaleString();
    });
    updateCount();
  }

  function generateSpeech() {
    var body = requestBody();
    var streaming = STREAMABLE[body.format] === true;
    setBusy(true);
    setDownload(null);
    say("Making your audio…", "loading");
    player.scrollIntoView({ block: "nearest", behavior: "smooth" });  // below the form on phones
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
    fetch(streaming ? form.dataset.streamUrl : form.dataset.speechUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "audio/*, application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var jobId = response.headers.get("X-Parla-Job-Id");
      if (type.indexOf("application/json") === 0) {
        return response.json().catch(function () { return {}; }).then(function (payload) {
          if (response.status === 202) {
            say("No speech worker answered in time; your audio is queued and will appear under Recent.", "queued");
            refreshHistory();
          } else {
            say(explain(payload, response.status), "error");
          }
        });
      }
      spend(response);
      var playing = body.format === "mp3" && canStreamMp3()
        ? playWhileStreaming(response)
        : response.blob().then(function (blob) { return playWhole(blob, type); });
      return playing.then(function () {
        say("Ready · " + body.format.toUpperCase(), "ready");
        if (jobId) setDownload(audioUrl(jobId, true));
        refreshHistory();
      });
    }).catch(function (error) {
      say("The audio could not be played: " + (error && error.message ? error.message : "network error") + ".", "error");
    }).then(function () {
      setBusy(false);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var message = problem(billable());
    if (message) {
      warning.hidden = false;
      warning.textContent = message;
      text.focus();
      return;
    }
    generateSpeech();
  });

  // Replay from the history: the stored file is fetched whole, so seeking works everywhere.
  historyBody.addEventListener("click", function (event) {
    var button = event.target.closest("[data-replay]");
    if (!button) return;
    say("Loading…", "loading");
    fetch(button.dataset.replay, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      var type = response.headers.get("Content-Type") || "audio/mpeg";
      return response.blob().then(function (blob) { return playWhole(blob, type); });
    }).then(function () {
      say("Replaying · " + button.dataset.title, "ready");
      setDownload(button.dataset.download);
      player.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }).catch(function (error) {
      say("That audio could not be loaded (" + error.message + ").", "error");
    });
  });

  updateMode();
  updateVoice();
})();
