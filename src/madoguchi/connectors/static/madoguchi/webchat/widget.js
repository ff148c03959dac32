// madoguchi chat widget. Embed with:
//   <script src="https://helpdesk.example/connectors/webchat/widget.js" data-key="wk_…" async></script>
// Plain JS, no build step. Everything lives in a Shadow DOM under a <madoguchi-chat> element, so
// the host page's CSS cannot reach it. Text from the team and the visitor is only ever set with
// textContent: HTML is never interpreted. The visitor token (signed by the server) is kept in the
// host site's localStorage and sent in a header; live events are read with fetch() so the token
// never appears in a URL.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.key || window.__madoguchiChat) return;
  window.__madoguchiChat = true;

  var src = new URL(script.src, location.href);
  var origin = src.origin;
  var base = origin + src.pathname.replace(/widget\.js$/, "");
  var api = base + "api/" + encodeURIComponent(script.dataset.key) + "/";
  var storeKey = "madoguchi-chat:" + origin;
  var pageLang = (document.documentElement.lang || navigator.language || "en").toLowerCase();
  var lang = pageLang.indexOf("ja") === 0 ? "ja" : "en";

  var S = {}; // strings from the server's catalogue (gettext)
  var cfg = null;
  var state = load();
  var messages = new Map(); // id -> message
  var readUpTo = 0; // the team has read the visitor up to this message id
  var readSent = 0; // we told the server we read the team's replies up to this id
  var lastEventId = "";
  var streamAbort = null;
  var unread = 0;

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey) || "{}") || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }
  function headers(json) {
    var h = {};
    if (state.token) h["X-Madoguchi-Visitor"] = state.token;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }
  function call(method, path, body) {
    var opts = { method: method, headers: headers(body && !(body instanceof FormData)), mode: "cors", credentials: "omit" };
    if (body) opts.body = body instanceof FormData ? body : JSON.stringify(body);
    // ?lang= on every call: errors come back in the page's language, not only the browser's.
    return fetch(api + path + (path.indexOf("?") < 0 ? "?lang=" + lang : ""), opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { data.__status = r.status; return data; });
    });
  }
  function clientId() {
    var a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // --- the elements ----------------------------------------------------------------------------
  var host = document.createElement("madoguchi-chat");
  ["position:fixed", "right:0", "bottom:0", "z-index:2147483000", "display:block", "visibility:hidden"].forEach(function (rule) {
    var p = rule.split(":");
    host.style.setProperty(p[0], p[1], "important");
  });
  var root = host.attachShadow({ mode: "open" });
  var css = el("link");
  css.rel = "stylesheet";
  css.href = base + "widget.css";
  css.onload = function () { host.style.setProperty("visibility", "visible", "important"); };
  root.appendChild(css);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.innerHTML = '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var badge = el("span", "badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("section", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  var head = el("header", "head");
  var title = el("h2", "title");
  var status = el("p", "status");
  var close = el("button", "close", "×");
  close.type = "button";
  head.append(title, close, status);

  var intro = el("form", "intro");
  var introText = el("p", "intro-text");
  var nameInput = el("input");
  nameInput.name = "name";
  nameInput.autocomplete = "name";
  nameInput.maxLength = 120;
  var emailInput = el("input");
  emailInput.name = "email";
  emailInput.type = "email";
  emailInput.autocomplete = "email";
  emailInput.maxLength = 254;
  var startButton = el("button", "primary");
  startButton.type = "submit";
  var introError = el("p", "error");
  intro.append(introText, nameInput, emailInput, startButton, introError);

  var log = el("ol", "log");
  log.setAttribute("aria-live", "polite");
  var typing = el("p", "typing");
  typing.hidden = true;
  var notice = el("p", "notice");
  notice.hidden = true;

  var composer = el("form", "composer");
  var text = el("textarea");
  text.rows = 1;
  text.maxLength = 5000;
  var attachLabel = el("label", "attach");
  attachLabel.innerHTML = '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path d="M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
  var fileInput = el("input");
  fileInput.type = "file";
  attachLabel.appendChild(fileInput);
  var send = el("button", "send primary");
  send.type = "submit";
  composer.append(attachLabel, text, send);
  panel.append(head, intro, log, typing, notice, composer);
  root.append(launcher, panel);

  function applyStrings() {
    launcher.setAttribute("aria-label", S.open);
    launcher.title = S.open;
    close.setAttribute("aria-label", S.close);
    panel.setAttribute("aria-label", cfg.title || S.title);
    title.textContent = cfg.title || S.title;
    status.textContent = cfg.open ? S.intro : cfg.back;
    status.classList.toggle("away", !cfg.open);
    introText.textContent = S.intro;
    nameInput.placeholder = S.name;
    nameInput.setAttribute("aria-label", S.name);
    emailInput.placeholder = S.email;
    emailInput.setAttribute("aria-label", S.email);
    startButton.textContent = S.start;
    text.placeholder = S.placeholder;
    text.setAttribute("aria-label", S.placeholder);
    send.textContent = S.send;
    attachLabel.title = S.attach;
    fileInput.setAttribute("aria-label", S.attach);
    fileInput.accept = cfg.upload_types.join(",");
  }

  function showChat(started) {
    intro.hidden = started;
    log.hidden = !started;
    composer.hidden = !started;
  }

  // --- messages ----------------------------------------------------------------------------------
  function fmtTime(iso) {
    var d = new Date(iso);
    return d.toLocaleTimeString(lang === "ja" ? "ja-JP" : "en", { hour: "numeric", minute: "2-digit" });
  }
  function render(m) {
    var li = el("li", "msg " + (m.direction === "out" ? "team" : "me"));
    li.dataset.id = m.id || "";
    if (m.direction === "out") li.appendChild(el("span", "who", m.author || S.someone));
    if (m.text) li.appendChild(el("div", "text", m.text));
    (m.attachments || []).forEach(function (a) {
      var link = el("a", "file");
      link.href = new URL(a.url, origin).href;
      link.target = "_blank";
      link.rel = "noopener";
      if (a.image) {
        var img = el("img");
        img.src = link.href;
        img.alt = a.name;
        link.appendChild(img);
      } else {
        link.textContent = "📎 " + a.name;
      }
      li.appendChild(link);
    });
    var meta = el("small", "meta");
    if (m.pending) meta.textContent = "…";
    else if (m.failed) { meta.textContent = S.failed; meta.classList.add("failed"); }
    else {
      meta.textContent = fmtTime(m.created_at);
      if (m.direction === "in") {
        var mark = el("span", "mark", m.id <= readUpTo ? S.read : S.sent);
        if (m.id <= readUpTo) mark.classList.add("read");
        meta.append(" · ", mark);
      }
    }
    li.appendChild(meta);
    if (m.failed) li.addEventListener("click", function () { retry(m); });
    return li;
  }
  function redraw() {
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var list = Array.from(messages.values()).sort(function (a, b) {
      var ka = a.id || 1e15 + a.seq, kb = b.id || 1e15 + b.seq;
      return ka - kb;
    });
    var items = list.map(render);
    if (more) {
      var earlier = el("li", "earlier");
      var button = el("button", "link", S.earlier);
      button.type = "button";
      button.addEventListener("click", function () { history(oldestId()); });
      earlier.appendChild(button);
      items.unshift(earlier);
    }
    log.replaceChildren.apply(log, items);
    if (atBottom || list.length && list[list.length - 1].direction === "in") log.scrollTop = log.scrollHeight;
  }
  var seq = 0;
  function upsert(m) {
    if (m.client_key && messages.has(m.client_key)) messages.delete(m.client_key);
    var isNew = !messages.has(m.id);
    messages.set(m.id, m);
    if (isNew && m.direction === "out") {
      typing.hidden = true;
      if (panel.hidden || document.hidden) { unread += 1; badge.textContent = String(unread); badge.hidden = false; }
    }
    redraw();
    markRead();
  }
  function markRead() {
    if (panel.hidden || document.hidden || !state.token) return;
    var maxOut = 0;
    messages.forEach(function (m) { if (m.direction === "out" && m.id > maxOut) maxOut = m.id; });
    if (maxOut > readSent) {
      readSent = maxOut;
      call("POST", "read/", { up_to: maxOut });
    }
  }

  var more = false;
  function history(before) {
    return call("GET", "messages/?lang=" + lang + (before ? "&before=" + before : "")).then(function (data) {
      if (data.__status === 401) return newSession();
      (data.messages || []).forEach(function (m) { messages.set(m.id, m); });
      // The stream starts where this page was read, so a reply sent meanwhile is not lost.
      if (!before && data.live_after && !lastEventId) lastEventId = String(data.live_after);
      readUpTo = Math.max(readUpTo, data.read_up_to || 0);
      more = !!data.more;
      if (before) {
        var height = log.scrollHeight;
        redraw();
        log.scrollTop = log.scrollHeight - height;
      } else {
        redraw();
      }
      markRead();
    });
  }
  function oldestId() {
    var min = 0;
    messages.forEach(function (m) { if (m.id && (!min || m.id < min)) min = m.id; });
    return min;
  }

  function sendMessage(body, pendingText) {
    var key = "c" + body.get("client_id");
    var pending = { id: 0, seq: ++seq, client_key: key, direction: "in", text: pendingText, pending: true, attachments: [] };
    messages.set(key, pending);
    redraw();
    log.scrollTop = log.scrollHeight;
    return call("POST", "messages/", body).then(function (data) {
      if (data.message) {
        data.message.client_key = key;
        upsert(data.message);
      } else {
        pending.pending = false;
        pending.failed = true;
        pending.body = body;
        if (data.__status === 429) showNotice(S.rate);
        else if (data.error) showNotice(data.error);
        redraw();
      }
    }).catch(function () {
      pending.pending = false;
      pending.failed = true;
      pending.body = body;
      redraw();
    });
  }
  function retry(m) {
    messages.delete(m.client_key);
    sendMessage(m.body, m.text);
  }
  function showNotice(message) {
    notice.textContent = message;
    notice.hidden = false;
    clearTimeout(showNotice.timer);
    showNotice.timer = setTimeout(function () { notice.hidden = true; }, 6000);
  }

  // --- live events: fetch() + a small SSE parser ---------------------------------------------------
  var backoff = 1000;
  function connect() {
    if (streamAbort || !state.token) return;
    var controller = new AbortController();
    streamAbort = controller;
    var h = headers(false);
    if (lastEventId) h["Last-Event-ID"] = lastEventId;
    fetch(api + "events/", { headers: h, mode: "cors", credentials: "omit", signal: controller.signal, cache: "no-store" })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error("stream " + r.status);
        backoff = 1000;
        panel.classList.add("live");
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("stream ended");
            buffer += decoder.decode(chunk.value, { stream: true });
            var parts = buffer.split("\n\n");
            buffer = parts.pop();
            parts.forEach(dispatch);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { /* reconnect below */ })
      .then(function () {
        panel.classList.remove("live");
        streamAbort = null;
        if (controller.signal.aborted) return;
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 30000);
      });
  }
  function dispatch(block) {
    var kind = "message", data = "", id = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event: ") === 0) kind = line.slice(7);
      else if (line.indexOf("data: ") === 0) data += line.slice(6);
      else if (line.indexOf("id: ") === 0) id = line.slice(4);
    });
    if (id) lastEventId = id;
    if (!data) return;
    var d;
    try { d = JSON.parse(data); } catch (e) { return; }
    if (kind === "message") upsert(d);
    else if (kind === "typing") {
      typing.textContent = S.typing.replace("{name}", d.name || S.someone);
      typing.hidden = false;
      clearTimeout(dispatch.typingTimer);
      dispatch.typingTimer = setTimeout(function () { typing.hidden = true; }, 6000);
    } else if (kind === "read") {
      if (d.up_to > readUpTo) { readUpTo = d.up_to; redraw(); }
    }
  }

  // --- session ------------------------------------------------------------------------------------
  function newSession(profile) {
    state = {};
    return call("POST", "session/", profile || {}).then(function (data) {
      if (!data.token) { introError.textContent = data.error || ""; return false; }
      state = { token: data.token, name: data.name, email: data.email };
      save();
      return true;
    });
  }
  function resume() {
    // Renew the token on every visit (it carries the visitor's name and email).
    return call("POST", "session/", {}).then(function (data) {
      if (data.__status === 401 || !data.token) return newSession();
      state.token = data.token;
      save();
      return true;
    });
  }

  intro.addEventListener("submit", function (e) {
    e.preventDefault();
    introError.textContent = "";
    call("POST", "session/", { name: nameInput.value.trim(), email: emailInput.value.trim() }).then(function (data) {
      if (!data.token) { introError.textContent = data.error || ""; return; }
      state = { token: data.token, name: data.name, email: data.email };
      save();
      showChat(true);
      history().then(connect, connect);
      text.focus();
    });
  });
  composer.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = text.value.trim();
    if (!value) return;
    text.value = "";
    lastTyping = 0; // typing the next message is announced at once
    var body = new FormData();
    body.set("text", value);
    body.set("client_id", clientId());
    body.set("lang", lang);
    body.set("page", location.href.slice(0, 500));
    sendMessage(body, value);
  });
  text.addEventListener("keydown", function (e) {
    // Enter that confirms a Japanese IME conversion is not "send" (Safari reports it as keyCode 229).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); composer.requestSubmit(); }
  });
  var lastTyping = 0;
  text.addEventListener("input", function () {
    if (Date.now() - lastTyping < 3000 || !text.value) return;
    lastTyping = Date.now();
    call("POST", "typing/", {});
  });
  fileInput.addEventListener("change", function () {
    var f = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!f) return;
    if (f.size > cfg.max_upload_bytes) { showNotice(S.too_big.replace("{mb}", Math.floor(cfg.max_upload_bytes / 1048576))); return; }
    if (cfg.upload_types.indexOf(f.type) < 0) { showNotice(S.bad_type); return; }
    var body = new FormData();
    body.set("file", f, f.name);
    body.set("client_id", clientId());
    body.set("lang", lang);
    sendMessage(body, "📎 " + f.name);
  });
  function open() {
    panel.hidden = false;
    launcher.hidden = window.matchMedia("(max-width: 600px)").matches;
    launcher.setAttribute("aria-expanded", "true");
    unread = 0;
    badge.hidden = true;
    markRead();
    (state.token ? text : nameInput).focus();
  }
  function shut() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { if (panel.hidden) open(); else shut(); });
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") shut(); });
  document.addEventListener("visibilitychange", markRead);
  // A browser gives our host 6 connections, and each open tab's stream holds one: a tab hidden
  // for a while (15 s, or the script tag's data-live-idle in ms) lets its stream go, and
  // reconnects from the last event it saw when shown again.
  var idle = null;
  var idleMs = Number(script.dataset.liveIdle || 15000);
  document.addEventListener("visibilitychange", function () {
    clearTimeout(idle);
    if (document.hidden) idle = setTimeout(function () { if (streamAbort) streamAbort.abort(); }, idleMs);
    else if (!streamAbort && state.token) connect();
  });

  function start() {
    call("GET", "config/").then(function (data) {
      if (!data.strings) return; // unknown key or a site that may not use it: stay invisible
      cfg = data;
      S = data.strings;
      applyStrings();
      document.body.appendChild(host);
      showChat(!!state.token);
      if (state.token) {
        resume().then(function (ok) {
          showChat(!!state.token);
          if (ok && state.token) history().then(connect, connect);
        });
      }
    });
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
