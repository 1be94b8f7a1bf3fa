// Chat client: WebSocket first, long polling when WebSocket is missing or refused.
// Messages arrive rendered by the server (the same HTML as on a reload); a client that lost
// its connection reconnects with growing delays and asks for what came after its cursor.
(function () {
  "use strict";
  var roomEl = document.getElementById("room");
  if (!roomEl) return;
  var room = roomEl.dataset.room;
  var cursor = roomEl.dataset.cursor || "";
  var historySize = parseInt(roomEl.dataset.history, 10) || 200;
  var form = document.getElementById("messageform");
  var inbox = document.getElementById("inbox");
  var status = document.getElementById("status");
  var count = document.getElementById("count");
  var socket = null;
  var failures = 0;  // connection attempts failed in a row
  var BACKOFF_BASE = 500, BACKOFF_CAP = 15000;  // milliseconds

  // The delay before reconnection attempt number n (0, 1, ...): doubling, capped.
  function backoff(n) {
    return Math.min(BACKOFF_CAP, BACKOFF_BASE * Math.pow(2, n));
  }

  function xsrf() {
    return form.querySelector("input[name=_xsrf]").value;
  }

  function setStatus(key, retryMs) {
    var text = roomEl.dataset[key];
    if (retryMs) text += " (" + Math.ceil(retryMs / 1000) + " s)";
    status.textContent = text;
    status.dataset.state = key;
    if (retryMs) status.dataset.retry = String(retryMs);
    else delete status.dataset.retry;
  }

  // Times are sent in UTC; show them in the reader's time zone.
  function localize(li) {
    var time = li.querySelector("time[datetime]");
    if (!time) return;
    var when = new Date(time.getAttribute("datetime"));
    if (!isNaN(when)) {
      time.textContent = when.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
      time.title = when.toLocaleString();
    }
  }

  function updateCount() {
    var n = inbox.children.length;
    count.textContent = count.dataset[n === 1 ? "one" : "many"].replace("%(count)d", String(n));
  }

  function show(message) {
    cursor = message.id;
    if (document.getElementById("m" + message.id)) return;
    var holder = document.createElement("template");
    holder.innerHTML = message.html;  // rendered and escaped by the server's template
    var li = holder.content.firstElementChild;
    if (!li) return;
    localize(li);
    inbox.appendChild(li);
    while (inbox.children.length > historySize) inbox.removeChild(inbox.firstElementChild);
    updateCount();
    li.scrollIntoView({block: "end"});
  }

  function post(url, fields) {
    var data = new FormData();
    data.append("_xsrf", xsrf());
    Object.keys(fields).forEach(function (k) { data.append(k, fields[k]); });
    return fetch(url, {method: "POST", body: data, credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }

  function retry(again) {
    var delay = backoff(failures);
    failures += 1;
    setStatus("reconnecting", delay);
    // A little jitter, so clients of a restarted server do not all return at once.
    setTimeout(again, delay * (1 + Math.random() * 0.2));
  }

  function poll() {
    if (failures === 0) setStatus("polling");
    post("/a/message/updates", {room: room, cursor: cursor}).then(function (reply) {
      failures = 0;
      setStatus("polling");
      reply.messages.forEach(show);
      poll();
    }, function () {
      retry(poll);
    });
  }

  function connect() {
    var opened = false;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + "/ws/" + encodeURIComponent(room) +
        "?cursor=" + encodeURIComponent(cursor);
    socket = new WebSocket(url);
    socket.onopen = function () {
      opened = true;
      connect.everOpened = true;
      failures = 0;
      setStatus("live");
    };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "message") show(data.message);
      else if (data.type === "messages") data.messages.forEach(show);
    };
    socket.onclose = function () {
      socket = null;
      // Refused on the very first try (a proxy without WebSocket): long polling for good.
      if (!opened && !connect.everOpened) { poll(); return; }
      retry(connect);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var input = form.elements.body;
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({body: text}));
    } else {
      post("/a/message/new", {room: room, body: text}).catch(function () {
        input.value = input.value || text;  // not sent: keep it for another try
        setStatus("offline");
      });
    }
  });

  Array.prototype.forEach.call(inbox.children, localize);
  window.asyncwebChat = {backoff: backoff};  // read by the browser tests
  if (roomEl.dataset.transport !== "poll" && "WebSocket" in window) connect();
  else poll();
})();
