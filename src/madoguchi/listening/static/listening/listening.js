// madoguchi listening: the rule editor's live preview, and the stream's keys and live arrivals.
(function () {
  "use strict";
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";

  // Forms that ask before they act (delete a rule).
  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  // --- rule editor: live preview, errors inline ------------------------------------------------
  function ruleEditor(form) {
    const box = $("#rule-preview");
    const summary = $(".summary", box);
    const scanned = $(".scanned", box);
    const sample = $(".sample", box);
    let timer = null;
    let inflight = null;
    let seq = 0;

    function showErrors(errors) {
      $$("[data-errors-for]", form).forEach((el) => {
        const list = errors[el.dataset.errorsFor] || [];
        el.textContent = list.join(" ");
        el.hidden = !list.length;
      });
    }

    async function refresh() {
      const mine = ++seq;
      if (inflight) inflight.abort();
      inflight = new AbortController();
      box.classList.add("loading");
      summary.textContent = box.dataset.loading;
      let data;
      try {
        const res = await fetch(form.dataset.previewUrl, {
          method: "POST",
          body: new FormData(form),
          headers: { "X-CSRFToken": csrf(), Accept: "application/json" },
          credentials: "same-origin",
          signal: inflight.signal,
        });
        if (!res.ok) throw new Error(String(res.status));
        data = await res.json();
      } catch (err) {
        if (err.name === "AbortError") return;
        if (mine === seq) { summary.textContent = box.dataset.failed; box.classList.remove("loading"); }
        return;
      }
      if (mine !== seq) return; // a newer keystroke's answer is on its way
      box.classList.remove("loading");
      sample.replaceChildren();
      scanned.textContent = "";
      if (!data.ok) {
        showErrors(data.errors || {});
        summary.textContent = Object.values(data.errors || {}).flat()[0] || box.dataset.failed;
        box.dataset.count = "";
        return;
      }
      showErrors({});
      box.dataset.count = String(data.count);
      summary.textContent = data.summary;
      scanned.textContent = data.scanned_note;
      if (!data.sample.length && data.count === 0) {
        const li = document.createElement("li");
        li.className = "empty";
        li.textContent = box.dataset.none;
        sample.append(li);
      }
      for (const p of data.sample) {
        const li = document.createElement("li");
        const head = document.createElement("div");
        const who = document.createElement("a");
        who.href = p.url;
        who.textContent = p.handle;
        const when = document.createElement("time");
        when.textContent = ` ${p.when} · ${p.channel}`;
        head.append(who, when);
        const text = document.createElement("div");
        text.className = "post-text";
        text.textContent = p.text;
        li.append(head, text);
        sample.append(li);
      }
    }

    const later = () => { clearTimeout(timer); timer = setTimeout(refresh, 350); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    if ($("textarea[name=any_of]", form).value || $("textarea[name=all_of]", form).value || $("textarea[name=accounts]", form).value) refresh();
  }

  // --- stream: keys, live arrivals -------------------------------------------------------------
  function stream(root) {
    const rows = () => $$("tr.post", root);
    const cursor = () => $("tr.post.cursor", root);

    function move(delta) {
      const list = rows();
      if (!list.length) return;
      let i = list.indexOf(cursor());
      list.forEach((r) => r.classList.remove("cursor"));
      i = i < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, i + delta));
      list[i].classList.add("cursor");
      list[i].scrollIntoView({ block: "nearest" });
    }

    function updateBulk() {
      const n = $$("input[name=post]:checked", root).length;
      const bar = $("#stream-bulk");
      if (bar) {
        bar.hidden = !n;
        $(".n", bar).textContent = String(n);
      }
    }

    // A form posted in the background; its JSON answer, or null.
    async function postForm(form) {
      const res = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": csrf(), Accept: "application/json" },
        credentials: "same-origin",
      });
      return res.ok ? res.json() : null;
    }

    // Undo of the last dismissal: one post from the keyboard (the row comes back where it was),
    // or the posts of a bulk dismissal (the server renders the bar; the form posts as it is).
    const undoBar = $("#undo-bar");
    let undone = null; // {row, live, parent, next}: a copy of the row from before its dismissal
    function offerUndo(saved) {
      if (!undoBar) return;
      undone = saved;
      $(".what", undoBar).textContent = undoBar.dataset.one;
      const ids = $(".ids", undoBar);
      ids.replaceChildren();
      const input = document.createElement("input");
      Object.assign(input, { type: "hidden", name: "post", value: saved.row.dataset.id });
      ids.append(input);
      undoBar.hidden = false;
    }
    if (undoBar) undoBar.addEventListener("submit", async (e) => {
      if (!undone) return; // a bulk dismissal: a plain POST, back to this page
      e.preventDefault();
      const saved = undone;
      const data = await postForm(undoBar);
      if (!data) return;
      undone = null;
      undoBar.hidden = true;
      // The row as it was, buttons and all, now seen; where the dismissed one is or was.
      const row = saved.row;
      row.classList.remove("status-new", "status-seen", "cursor");
      row.classList.add(`status-${data.status}`);
      $(".state", row).textContent = data.status_label;
      const seenForm = $("form.seen", row);
      if (seenForm) seenForm.remove();
      rows().forEach((r) => r.classList.remove("cursor"));
      if (saved.live.isConnected) saved.live.replaceWith(row);
      else if (saved.next && saved.next.isConnected) saved.parent.insertBefore(row, saved.next);
      else saved.parent.append(row);
      row.classList.add("cursor");
      row.scrollIntoView({ block: "nearest" });
    });

    // Dismiss or mark seen without leaving the page; the cursor moves on to the next post.
    async function act(row, which) {
      const form = $(`form.${which}`, row);
      if (!form) return;
      const before = which === "dismiss" ? { row: row.cloneNode(true), parent: row.parentNode, next: row.nextElementSibling } : null;
      const data = await postForm(form);
      if (!data) return;
      row.classList.remove("status-new", "status-seen");
      row.classList.add(`status-${data.status}`);
      $(".state", row).textContent = data.status_label;
      form.remove();
      if (before && data.status === "dismissed") offerUndo({ ...before, live: row });
      if (which === "dismiss") {
        const seen = $("form.seen", row);
        if (seen) seen.remove();
        if (root.dataset.view === "todo") {
          const next = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          if (next && next.matches("tr.post")) next.classList.add("cursor");
          if (!rows().length && !undoBar) location.reload(); // shows the empty state
        }
      }
      updateBulk();
    }

    const hint = $("#keys-hint");
    if (hint) hint.addEventListener("click", () => $("#listen-help").showModal());
    root.addEventListener("change", (e) => { if (e.target.matches("input[name=post]")) updateBulk(); });
    root.addEventListener("click", (e) => {
      const row = e.target.closest("tr.post");
      if (row && !e.target.closest("a,button,input,form")) {
        rows().forEach((r) => r.classList.remove("cursor"));
        row.classList.add("cursor");
      }
      const quick = e.target.closest("button[data-act]");
      if (quick) { e.preventDefault(); act(quick.closest("tr.post"), quick.dataset.act); }
    });

    document.addEventListener("keydown", (e) => {
      const tag = (e.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const help = $("#listen-help");
      if (help && help.open) return;
      if (e.key === "Enter" && (tag === "a" || tag === "button")) return;
      const row = cursor();
      switch (e.key) {
        case "j": move(1); break;
        case "k": move(-1); break;
        case "o": case "Enter": if (row) { e.preventDefault(); location.href = $("a.open", row).href; } break;
        case "r": if (row && $("form.respond", row)) { e.preventDefault(); $("form.respond", row).requestSubmit(); } break;
        case "d": if (row) act(row, "dismiss"); break;
        case "s": if (row) act(row, "seen"); break;
        case "x": if (row) { const box = $("input[name=post]", row); box.checked = !box.checked; updateBulk(); } break;
        case "D": if ($$("input[name=post]:checked", root).length) $("#bulk").requestSubmit(); break;
        case "u": if (undoBar && !undoBar.hidden) undoBar.requestSubmit(); break;
        case "?": if (help) { e.preventDefault(); help.showModal(); } break;
        default: return;
      }
    });

    // New posts arrive over the workspace's live events; the list does not jump: a pill offers them.
    if (!window.EventSource || !window.madoguchiLive) return;
    const pill = $("#new-posts");
    let fresh = 0;
    window.madoguchiLive(root.dataset.liveAfter, [["listening.captured", (e) => {
      const data = JSON.parse(e.data);
      fresh += Number(data.count || 0);
      if (!fresh || !pill) return;
      $(".n", pill).textContent = (fresh === 1 ? pill.dataset.one : pill.dataset.many).replace("{n}", String(fresh));
      pill.hidden = false;
    }]]);
    if (pill) pill.addEventListener("click", () => location.reload());
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("#rule-form");
    if (form) ruleEditor(form);
    const root = $("#stream");
    if (root) stream(root);
  });
})();
