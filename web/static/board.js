/* The live board keeps itself current (no build step, no framework).
 *
 * - Server-sent events from /board/events say *that* something changed; the board then
 *   re-reads /board/state.json (debounced) and redraws.
 * - Without EventSource, or while the stream is down, it polls state.json every 5 s.
 * - Ringing seconds and the "past the answer limit" alert are counted here every second,
 *   from the server's clock (the offset is taken from state.json's "now").
 * Everything from the server is written with textContent: caller ids are untrusted.
 */
(function () {
  "use strict";

  var root = document.getElementById("board");
  if (!root) {
    return;
  }
  var labels = JSON.parse(document.getElementById("board-labels").textContent || "{}");
  var stateUrl = root.getAttribute("data-state-url");
  var eventsUrl = root.getAttribute("data-events-url");
  var zone = root.getAttribute("data-tz") || undefined;
  var POLL_MS = 5000;
  var SAFETY_MS = 30000;

  var offsetMs = 0; // server time minus this machine's time
  var pollTimer = null;
  var pending = null;
  var source = null;
  var baseTitle = document.title;

  function label(key) {
    return Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : key.replace(/^outcome_/, "");
  }

  function formatTime(iso, seconds) {
    if (!iso) {
      return "";
    }
    var options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) {
      options.second = "2-digit";
    }
    try {
      options.timeZone = zone;
      return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
    } catch (e) {
      delete options.timeZone;
      return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function setHidden(id, hidden) {
    var node = document.getElementById(id);
    if (node) {
      node.hidden = hidden;
    }
  }

  function renderLines(lines) {
    var body = document.getElementById("board-lines");
    var rows = document.createDocumentFragment();
    lines.forEach(function (line) {
      var tr = el("tr", "line line-" + line.state + (line.alert ? " line-alert" : ""));
      tr.setAttribute("data-line", line.number);
      tr.setAttribute("data-state", line.state);
      tr.appendChild(el("td", "", line.unit));
      var number = el("td");
      number.appendChild(el("span", "line-number", line.number));
      number.appendChild(document.createTextNode(" " + (line.name || "")));
      tr.appendChild(number);
      var state = el("td", "line-state");
      state.setAttribute("data-since", line.since || "");
      state.appendChild(el("span", "badge state-" + line.state, label(line.state)));
      tr.appendChild(state);
      var ringing = el("td", "line-ringing");
      line.ringing.forEach(function (call) {
        var div = el("div", "ringing-call" + (call.alert ? " alert" : ""));
        div.setAttribute("data-linkedid", call.linkedid || "");
        div.setAttribute("data-since", call.since || "");
        div.setAttribute("data-threshold", String(line.threshold));
        div.appendChild(el("span", "caller", call.caller || label("unknown_caller")));
        div.appendChild(document.createTextNode(" "));
        div.appendChild(el("span", "ring-seconds", Math.round(call.seconds)));
        div.appendChild(document.createTextNode(" " + label("seconds")));
        ringing.appendChild(div);
      });
      tr.appendChild(ringing);
      var phones = el("td", "line-phones");
      line.desk_phones.forEach(function (phone) {
        var offline = line.offline_phones.indexOf(phone) >= 0;
        phones.appendChild(el("span", "phone" + (offline ? " phone-offline" : ""), phone));
        phones.appendChild(document.createTextNode(" "));
      });
      tr.appendChild(phones);
      rows.appendChild(tr);
    });
    if (!lines.length) {
      var empty = el("tr");
      var td = el("td", "", label("no_lines"));
      td.colSpan = 5;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    body.replaceChildren(rows);
  }

  function renderShifts(shifts, without) {
    var list = document.getElementById("board-shifts");
    var items = document.createDocumentFragment();
    shifts.forEach(function (shift) {
      var li = el("li");
      li.appendChild(el("strong", "", shift.unit));
      var text = " · " + shift.name + ": " + label("main") + " " + shift.main_officer;
      if (shift.backup_officer) {
        text += ", " + label("backup") + " " + shift.backup_officer;
      }
      if (shift.leader) {
        text += ", " + label("leader") + " " + shift.leader;
      }
      li.appendChild(document.createTextNode(text));
      items.appendChild(li);
    });
    without.forEach(function (unit) {
      items.appendChild(el("li", "no-shift", unit + ": " + label("no_shift")));
    });
    list.replaceChildren(items);
  }

  function renderCallbacks(callbacks, older) {
    var body = document.getElementById("board-callbacks");
    var rows = document.createDocumentFragment();
    callbacks.forEach(function (cb) {
      var tr = el("tr", "callback" + (cb.overdue ? " overdue" : ""));
      tr.setAttribute("data-callback", String(cb.id));
      tr.appendChild(el("td", "", formatTime(cb.started_at, true)));
      var caller = cb.caller || "";
      if (cb.caller_name) {
        caller += " (" + cb.caller_name + ")";
      }
      tr.appendChild(el("td", "", caller));
      tr.appendChild(el("td", "", cb.line));
      tr.appendChild(el("td", "", label("outcome_" + cb.outcome)));
      tr.appendChild(el("td", "", formatTime(cb.due_at, false)));
      var link = el("td");
      if (cb.url) {
        var a = el("a", "", label("open_call"));
        a.href = cb.url;
        link.appendChild(a);
      }
      tr.appendChild(link);
      rows.appendChild(tr);
    });
    if (!callbacks.length) {
      var empty = el("tr", "empty");
      var td = el("td", "", label("no_callbacks"));
      td.colSpan = 6;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    body.replaceChildren(rows);
    var olderNode = document.getElementById("older-callbacks");
    if (olderNode) {
      olderNode.hidden = !older;
      var count = olderNode.querySelector(".count");
      if (count) {
        count.textContent = String(older);
      }
    }
  }

  function render(state) {
    offsetMs = Date.parse(state.now) - Date.now();
    setHidden("live-banner", state.live.available);
    setHidden(
      "listener-banner",
      !state.live.listeners.some(function (l) {
        return !l.connected;
      })
    );
    renderLines(state.lines);
    renderShifts(state.shifts, state.units_without_shift);
    renderCallbacks(state.callbacks, state.older_open_callbacks);
    var updated = document.getElementById("board-updated");
    if (updated) {
      updated.setAttribute("datetime", state.now);
      updated.textContent = formatTime(state.now, true);
    }
    tick();
  }

  function tick() {
    var now = Date.now() + offsetMs;
    var alerts = 0;
    root.querySelectorAll(".ringing-call").forEach(function (div) {
      var since = Date.parse(div.getAttribute("data-since"));
      if (isNaN(since)) {
        return;
      }
      var seconds = Math.max(0, (now - since) / 1000);
      var threshold = parseFloat(div.getAttribute("data-threshold"));
      var span = div.querySelector(".ring-seconds");
      if (span) {
        span.textContent = String(Math.floor(seconds));
      }
      var alert = !isNaN(threshold) && seconds > threshold;
      div.classList.toggle("alert", alert);
      var row = div.closest("tr");
      if (row && alert) {
        row.classList.add("line-alert");
      }
      alerts += alert ? 1 : 0;
    });
    setHidden("alert-banner", alerts === 0);
    document.title = alerts ? "(!) " + baseTitle : baseTitle;
  }

  function fetchState() {
    return fetch(stateUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || response.status === 401 || type.indexOf("json") < 0) {
          window.location.reload(); // signed out: show the login page
          return null;
        }
        if (!response.ok) {
          throw new Error("state.json: HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        if (state) {
          render(state);
        }
      })
      .catch(function () {
        setHidden("live-banner", false);
      });
  }

  function refreshSoon() {
    if (pending) {
      return;
    }
    pending = window.setTimeout(function () {
      pending = null;
      fetchState();
    }, 150);
  }

  function setMode(mode) {
    var node = document.getElementById("board-mode");
    if (node) {
      node.textContent = "(" + label(mode) + ")";
    }
    root.setAttribute("data-mode", mode);
  }

  function startPolling() {
    setMode("polling");
    if (!pollTimer) {
      pollTimer = window.setInterval(fetchState, POLL_MS);
    }
  }

  function stopPolling() {
    if (pollTimer) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  function connect() {
    if (!window.EventSource) {
      startPolling();
      return;
    }
    source = new EventSource(eventsUrl);
    source.addEventListener("open", function () {
      stopPolling();
      setMode("live");
      refreshSoon(); // events may have been missed while (re)connecting
    });
    ["ringing", "line", "call", "status", "reset"].forEach(function (type) {
      source.addEventListener(type, refreshSoon);
    });
    source.addEventListener("unavailable", function () {
      setHidden("live-banner", false);
      startPolling();
    });
    source.addEventListener("error", function () {
      startPolling();
      if (source.readyState === EventSource.CLOSED) {
        window.setTimeout(connect, POLL_MS); // the browser gave up: try again later
      }
    });
  }

  window.setInterval(tick, 1000);
  window.setInterval(fetchState, SAFETY_MS);
  tick();
  connect();
})();
