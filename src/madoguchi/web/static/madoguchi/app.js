// madoguchi agent UI: live updates (SSE), keyboard shortcuts, presence, bulk selection.
(function () {
  "use strict";
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const me = document.body.dataset.user;

  function post(url, data) {
    const body = new URLSearchParams(data);
    return fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrf(), Accept: "application/json" }, credentials: "same-origin" });
  }

  // --- list refresh -------------------------------------------------------------------------
  // Two refreshes can be in flight at once (an event arrives while the last one loads); a slow
  // older answer must not overwrite a newer one, or a sent reply shows "Sending" again.
  let refreshTimer = null;
  let listAsked = 0, listShown = 0;
  function refreshList() {
    const pane = $("#list-pane");
    if (!pane) return;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      const url = new URL(pane.dataset.listUrl, location.href);
      url.searchParams.set("partial", "list");
      const checked = $$("#conv-list input:checked").map((i) => i.value);
      const cursorId = ($(".conv-item.cursor") || {}).dataset?.id;
      const asked = ++listAsked;
      const res = await fetch(url, { credentials: "same-origin" });
      if (!res.ok) return;
      const html = await res.text();
      if (asked < listShown) return;
      listShown = asked;
      pane.innerHTML = html;
      checked.forEach((id) => { const box = $(`#conv-list input[value="${id}"]`); if (box) box.checked = true; });
      const conv = $("#conversation");
      if (conv) $$(".conv-item").forEach((li) => li.classList.toggle("selected", li.dataset.id === conv.dataset.id));
      if (cursorId) { const li = $(`.conv-item[data-id="${cursorId}"]`); if (li) li.classList.add("cursor"); }
      updateBulk();
    }, 150);
  }

  let threadTimer = null;
  let threadAsked = 0, threadShown = 0;
  function refreshConversation() {
    const conv = $("#conversation");
    if (!conv) return;
    clearTimeout(threadTimer);
    threadTimer = setTimeout(async () => {
      const url = new URL(location.href);
      url.searchParams.set("partial", "conversation");
      const asked = ++threadAsked;
      const res = await fetch(url, { credentials: "same-origin" });
      if (!res.ok) return;
      const html = await res.text();
      if (asked < threadShown) return;
      threadShown = asked;
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = $("#conversation", holder);
      // The header is swapped; the thread is merged (mergeThread). The composer, with what the
      // agent is typing (even during this fetch) and its focus, stays as it is.
      $(".conv-head").replaceWith($(".conv-head", fresh));
      mergeThread($("#thread"), $("#thread", fresh));
    }, 150);
  }

  // A refresh brings the latest messages. Merged by id into the thread on screen, so that
  // earlier messages the agent loaded stay, a quoted part they opened stays open, and the view
  // only follows new messages if they were reading the end (not while they read further up).
  function mergeThread(thread, fresh) {
    const atEnd = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 60;
    const top = thread.scrollTop;
    const incoming = $$("article.msg", fresh);
    const firstFresh = incoming.length ? Number(incoming[0].dataset.id) : Infinity;
    const current = $$("article.msg", thread);
    // Messages in the refreshed window that are gone (moved to another conversation) go too.
    const keep = new Set(incoming.map((m) => m.id));
    current.forEach((m) => { if (Number(m.dataset.id) >= firstFresh && !keep.has(m.id)) m.remove(); });
    const olderLoaded = current.length && Number(current[0].dataset.id) < firstFresh;
    if (!olderLoaded) {
      const button = $(".load-older", thread), freshButton = $(".load-older", fresh);
      if (button && freshButton) button.replaceWith(freshButton);
      else if (button) button.remove();
      else if (freshButton) thread.prepend(freshButton);
    }
    for (const m of incoming) {
      const old = thread.querySelector(`#${m.id}`);
      if (!old) { thread.append(m); continue; }
      if (old.outerHTML === m.outerHTML) continue;
      const open = $$("details", old).map((d) => d.open);
      $$("details", m).forEach((d, i) => { if (open[i]) d.open = true; });
      old.replaceWith(m);
    }
    if (atEnd) scrollThread();
    else thread.scrollTop = top;
  }

  function scrollThread() { const t = $("#thread"); if (t) t.scrollTop = t.scrollHeight; }

  // --- live events --------------------------------------------------------------------------
  const presence = new Map(); // user id -> {name, state, at}
  function showCollision() {
    const box = $("#collision");
    if (!box) return;
    const now = Date.now();
    const others = [...presence.entries()].filter(([, p]) => now - p.at < 12000 && p.state !== "left");
    if (!others.length) { box.hidden = true; return; }
    box.hidden = false;
    box.textContent = others.map(([, p]) => (p.state === "typing" ? box.dataset.typing : box.dataset.viewing).replace("{name}", p.name)).join(" · ");
  }
  setInterval(showCollision, 3000);

  // The workspace's live stream, for the inbox and the listening stream (window.madoguchiLive).
  // Browsers give a site at most 6 connections over HTTP/1.1 and each open tab's stream holds one:
  // with a few inbox tabs open, the next tab would not even load. So a tab that stays hidden for
  // a moment (body data-live-idle, ms) closes its stream, and opens it again when shown, from the
  // last event it saw: what happened meanwhile is replayed and the page catches up.
  function live(after, handlers) {
    const dot = $("#live-dot");
    let es = null, last = after || "", idle = null;
    function open() {
      es = new EventSource(last ? `/inbox/events/?after=${encodeURIComponent(last)}` : "/inbox/events/");
      es.onopen = () => dot && dot.classList.add("on");
      es.onerror = () => dot && dot.classList.remove("on");
      for (const [kind, fn] of handlers) {
        es.addEventListener(kind, (e) => { if (e.lastEventId) last = e.lastEventId; fn(e); });
      }
    }
    function close() {
      if (es) es.close();
      es = null;
      if (dot) dot.classList.remove("on");
    }
    document.addEventListener("visibilitychange", () => {
      clearTimeout(idle);
      if (document.hidden) idle = setTimeout(close, Number(document.body.dataset.liveIdle || 15000));
      else if (!es) open();
    });
    open();
  }
  window.madoguchiLive = live;

  function connect() {
    if (!window.EventSource || !document.body.classList.contains("inbox")) return;
    const current = () => ($("#conversation") || {}).dataset?.id;
    const onConv = (e) => {
      const d = JSON.parse(e.data);
      refreshList();
      if (String(d.conversation) === current() && !(e.type === "conversation.updated" && d.seen_by)) refreshConversation();
    };
    let visitorTypingTimer = null;
    live(($("#list-pane") || {}).dataset?.liveAfter, [
    ["message.created", onConv],
    ["conversation.updated", onConv],
    ["message.delivery", (e) => {
      const d = JSON.parse(e.data);
      if (String(d.conversation) === current()) refreshConversation();
    }],
    // The customer's side (chat widget): read marks refresh the thread, typing shows for a moment.
    ["message.updated", (e) => {
      const d = JSON.parse(e.data);
      if (String(d.conversation) === current() && d.event === "read") refreshConversation();
    }],
    ["visitor.typing", (e) => {
      const d = JSON.parse(e.data);
      const box = $("#visitor-typing");
      if (!box || String(d.conversation) !== current()) return;
      box.textContent = box.dataset.typing.replace("{name}", d.name || box.dataset.someone);
      box.hidden = false;
      clearTimeout(visitorTypingTimer);
      visitorTypingTimer = setTimeout(() => { box.hidden = true; }, 6000);
    }],
    ["message.created", (e) => {
      const box = $("#visitor-typing");
      if (box && String(JSON.parse(e.data).conversation) === current()) box.hidden = true;
    }],
    ["presence", (e) => {
      const d = JSON.parse(e.data);
      if (String(d.conversation) !== current() || String(d.user) === me) return;
      presence.set(d.user, { name: d.name, state: d.state, at: Date.now() });
      showCollision();
    }],
    ]);
  }

  // --- presence pings -----------------------------------------------------------------------
  function startPresence() {
    const conv = $("#conversation");
    if (!conv) return;
    const url = conv.dataset.presenceUrl;
    post(url, { state: "viewing" });
    setInterval(() => { if (!document.hidden) post(url, { state: "viewing" }); }, 8000);
    let lastTyping = 0;
    document.addEventListener("input", (e) => {
      if (e.target.id !== "reply-text" || Date.now() - lastTyping < 4000) return;
      lastTyping = Date.now();
      post(url, { state: "typing" });
    });
    window.addEventListener("pagehide", () => navigator.sendBeacon && navigator.sendBeacon(url, new URLSearchParams({ state: "left", csrfmiddlewaretoken: csrf() })));
  }

  // --- keyboard -----------------------------------------------------------------------------
  function items() { return $$(".conv-item"); }
  function moveCursor(delta) {
    const list = items();
    if (!list.length) return;
    let i = list.findIndex((li) => li.classList.contains("cursor"));
    if (i < 0) i = list.findIndex((li) => li.classList.contains("selected"));
    list.forEach((li) => li.classList.remove("cursor"));
    i = Math.max(0, Math.min(list.length - 1, i + delta));
    list[i].classList.add("cursor");
    list[i].scrollIntoView({ block: "nearest" });
  }
  function setKind(kind) {
    const radio = $(`#composer input[name=kind][value=${kind}]`);
    if (!radio) return;
    radio.checked = true;
    $("#composer").classList.toggle("note", kind === "note");
    $("#reply-text").focus();
  }
  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    const typing = tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.id === "reply-text") { e.preventDefault(); $("#composer").requestSubmit(); return; }
    if (e.key === "Escape" && typing) { e.target.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if ($("dialog[open]")) return; // the dialog handles its own keys (Esc closes it)
    // Enter on a focused link or button is that control's own action, not "open the cursor".
    if (e.key === "Enter" && (tag === "a" || tag === "button")) return;
    const cur = $(".conv-item.cursor") || $(".conv-item.selected");
    switch (e.key) {
      case "j": moveCursor(1); break;
      case "k": moveCursor(-1); break;
      case "o": case "Enter": { const to = cur || items()[0]; if (to) { e.preventDefault(); location.href = $("a.conv-link", to).href; } break; }
      case "r": if ($("#composer")) { e.preventDefault(); setKind("reply"); } break;
      case "n": if ($("#composer")) { e.preventDefault(); setKind("note"); } break;
      case "e": if ($("#resolve-form")) { e.preventDefault(); $("#resolve-form").requestSubmit(); } break;
      case "x": if (cur) { const box = $("input[type=checkbox]", cur); box.checked = !box.checked; updateBulk(); } break;
      case "/": if ($("#search-box")) { e.preventDefault(); $("#search-box").focus(); } break;
      case "?": { const d = $("#help-dialog"); if (d) d.showModal(); break; }
      case "Escape": if ($("#conversation")) location.href = $(".back").href; break;
    }
  });

  // --- bulk and misc ------------------------------------------------------------------------
  function updateBulk() {
    const bar = $("#bulk-bar");
    if (bar) bar.hidden = !$$("#conv-list input:checked").length;
  }
  document.addEventListener("change", (e) => {
    if (e.target.matches("#conv-list input[type=checkbox]")) updateBulk();
    if (e.target.matches("#composer input[name=kind]")) $("#composer").classList.toggle("note", e.target.value === "note");
    if (e.target.matches("#composer input[type=file]")) {
      const names = $("#composer .attach-names");
      const files = Array.from(e.target.files).map((f) => f.name);
      names.textContent = files.length ? files.join(", ") : names.dataset.empty;
    }
  });
  document.addEventListener("click", async (e) => {
    const btn = e.target.closest(".load-older");
    if (!btn) return;
    const res = await fetch(`${btn.dataset.url}?before=${btn.dataset.before}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const holder = document.createElement("div");
    holder.innerHTML = await res.text();
    const thread = $("#thread");
    const oldHeight = thread.scrollHeight;
    btn.replaceWith(...holder.childNodes);
    thread.scrollTop = thread.scrollHeight - oldHeight;
  });

  // --- length counter: the channel's limit, counted the way the platform counts ---------------
  const URL_RE = /https?:\/\/\S+/g;
  function platformLength(text, counting) {
    if (counting === "graphemes" && window.Intl && Intl.Segmenter) {
      // Bluesky counts what a reader sees as one character (an emoji with modifiers is one).
      return [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)].length;
    }
    if (counting === "links23") {
      // Mastodon: every link counts 23, whatever its length.
      const urls = text.match(URL_RE) || [];
      return urls.length * 23 + [...text.replace(URL_RE, "")].length;
    }
    if (counting === "bytes") return new TextEncoder().encode(text).length;  // Instagram DMs: UTF-8 bytes
    if (counting !== "x") return [...text].length;
    // X: every URL counts 23; characters outside Latin, general punctuation and a few other
    // light ranges (so CJK, kana, emoji) count 2.
    const urls = text.match(URL_RE) || [];
    let n = urls.length * 23;
    for (const ch of text.replace(URL_RE, "")) {
      const c = ch.codePointAt(0);
      const light = c <= 0x10ff || (c >= 0x2000 && c <= 0x200d) || (c >= 0x2010 && c <= 0x201f) || (c >= 0x2032 && c <= 0x2037);
      n += light ? 1 : 2;
    }
    return n;
  }
  function countReply() {
    const counter = $("#length-counter"), text = $("#reply-text");
    if (!counter || !text) return;
    const max = Number(counter.dataset.max);
    const n = platformLength(text.value, counter.dataset.counting);
    counter.textContent = n > max ? `${n} / ${max} · ${counter.dataset.over}` : `${n} / ${max}`;
    counter.classList.toggle("over", n > max);
  }
  document.addEventListener("input", (e) => { if (e.target.id === "reply-text") countReply(); });
  // A reply mode with its own limit (an Instagram private reply is a direct message: 1,000 bytes).
  document.addEventListener("change", (e) => {
    const counter = $("#length-counter");
    if (!counter || e.target.name !== "reply_mode" || !e.target.dataset.max) return;
    counter.dataset.max = e.target.dataset.max;
    counter.dataset.counting = e.target.dataset.counting;
    countReply();
  });

  // Phones: the side panel (assignee, labels, suggestions, the customer's posts) opens over the thread.
  document.addEventListener("click", (e) => {
    const toggle = e.target.closest && e.target.closest(".props-toggle");
    if (!toggle) return;
    const conv = toggle.closest(".conversation");
    const open = conv.classList.toggle("show-props");
    conv.querySelectorAll(".props-toggle").forEach((b) => b.setAttribute("aria-expanded", String(open)));
  });

  // --- top bar menu on phones ----------------------------------------------------------------
  // Below 960 px (app.css) the sections fold into a panel under the top bar. The
  // button says whether it is open (aria-expanded); opening moves focus to the first section,
  // Escape or a click outside closes it (Escape brings focus back to the button), and tabbing out
  // of it closes it too. Up/Down/Home/End move between the sections.
  function setUpMenu() {
    const button = $(".topbar .menu-toggle");
    const menu = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!menu) return;
    const bar = button.closest(".topbar");
    const links = () => $$("a", menu);
    const isOpen = () => bar.classList.contains("menu-open");
    function setOpen(open, focusButton) {
      bar.classList.toggle("menu-open", open);
      button.setAttribute("aria-expanded", String(open));
      if (open) links()[0]?.focus();
      else if (focusButton) button.focus();
    }
    button.addEventListener("click", () => setOpen(!isOpen(), false));
    // Capture phase: Escape closes the menu and nothing else (the inbox uses it to go back).
    document.addEventListener("keydown", (e) => {
      if (!isOpen()) return;
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); setOpen(false, true); return; }
      const list = links(), i = list.indexOf(document.activeElement);
      if (i < 0) return;
      const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: list.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault(); e.stopPropagation();
      list[(to + list.length) % list.length].focus();
    }, true);
    document.addEventListener("click", (e) => {
      if (isOpen() && !menu.contains(e.target) && !button.contains(e.target)) setOpen(false, false);
    });
    bar.addEventListener("focusout", (e) => {
      if (isOpen() && e.relatedTarget && !menu.contains(e.relatedTarget) && e.relatedTarget !== button) setOpen(false, false);
    });
    // Turning a tablet to landscape shows the row again: leave no stale open state behind.
    matchMedia("(max-width: 960px)").addEventListener("change", (e) => { if (!e.matches) setOpen(false, false); });
  }
  setUpMenu();

  document.addEventListener("DOMContentLoaded", () => {
    scrollThread();
    connect();
    startPresence();
    // Notices go after 6 s, errors stay until read; a tap or click on either closes it (on a
    // phone the notice covers the page's title).
    setTimeout(() => $$(".flash div:not(.flash-error)").forEach((d) => d.remove()), 6000);
    document.addEventListener("click", (e) => { const note = e.target.closest && e.target.closest(".flash div"); if (note) note.remove(); });
  });
})();
