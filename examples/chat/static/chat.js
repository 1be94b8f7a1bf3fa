// Chat client: WebSocket first, long polling when WebSocket is missing or refused.
(function () {
  "use strict";
  var roomEl = document.getElementById("room");
  if (!roomEl) return;
  var room = roomEl.dataset.room;
  var cursor = roomEl.dataset.cursor || "";
  var form = document.getElementById("messageform");
  var inbox = document.getElementById("inbox");
  var status = document.getElementById("status");
  var socket = null;

  function xsrf() {
    return form.querySelector("input[name=_xsrf]").value;
  }

  function setStatus(key) {
    status.textContent = roomEl.dataset[key];
    status.dataset.state = key;
  }

  function show(message) {
    cursor = message.id;
    if (document.getElementById("m" + message.id)) return;
    var li = document.createElement("li");
    li.className = "message";
    li.id = "m" + message.id;
    var from = document.createElement("span");
    from.className = "from";
    from.textContent = message.from;
    var body = document.createElement("span");
    body.className = "body";
    body.textContent = message.body;
    li.appendChild(from);
    li.appendChild(document.createTextNode(": "));
    li.appendChild(body);
    inbox.appendChild(li);
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

  function poll() {
    setStatus("polling");
    post("/a/message/updates", {room: room, cursor: cursor}).then(function (reply) {
      reply.messages.forEach(show);
      poll();
    }, function () {
      setStatus("offline");
      setTimeout(poll, 2000);
    });
  }

  function connect() {
    var opened = false;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/" + encodeURIComponent(room));
    socket.onopen = function () { opened = true; setStatus("live"); };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "message") show(data.message);
    };
    socket.onclose = function () {
      socket = null;
      if (!opened) { poll(); return; }  // refused outright: fall back for good
      setStatus("offline");
      setTimeout(connect, 1000);
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
      post("/a/message/new", {room: room, body: text}).catch(function () { setStatus("offline"); });
    }
  });

  if (roomEl.dataset.transport !== "poll" && "WebSocket" in window) connect();
  else poll();
})();
