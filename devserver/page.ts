/**
 * The inbox page: one HTML document, one style sheet and one script, kept here as strings so they
 * ship inside dist/ with no asset step. The script builds every element from message data with
 * `textContent` (never `innerHTML`), so a subject or address is shown, never parsed as HTML. A
 * message's HTML is only ever shown in the sandboxed frame (see render.ts).
 */

/** The page may load its own script, style and frames, and talk to its own API; nothing else. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function inboxPage(smtpUrl: string | undefined): string {
  const target = smtpUrl ? ` to <code>${escapeHtml(smtpUrl)}</code>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>mailstage inbox</title>
<link rel="stylesheet" href="/inbox.css">
<script src="/inbox.js" defer></script>
</head>
<body>
<header class="bar">
  <h1>mailstage <span>inbox</span></h1>
  <span id="count" class="count"></span>
  <span id="live" class="live" data-state="connecting">connecting</span>
  <button id="delete-all" type="button" class="danger" disabled>Delete all</button>
</header>
<main>
  <nav class="list-pane">
    <ul id="list" class="list" aria-label="Messages"></ul>
    <p id="empty" class="empty">No messages yet. Send one${target}; it shows up here as it arrives.</p>
  </nav>
  <section id="view" class="view" hidden>
    <div class="meta">
      <h2 id="subject"></h2>
      <dl>
        <dt>From</dt><dd id="from"></dd>
        <dt>To</dt><dd id="to"></dd>
        <dt>Date</dt><dd id="date"></dd>
        <dt>Size</dt><dd id="size"></dd>
      </dl>
      <ul id="attachments" class="attachments" aria-label="Attachments"></ul>
    </div>
    <div class="tabs" role="tablist">
      <button type="button" role="tab" data-tab="html">HTML</button>
      <button type="button" role="tab" data-tab="text">Text</button>
      <button type="button" role="tab" data-tab="headers">Headers</button>
      <button type="button" role="tab" data-tab="raw">Raw</button>
    </div>
    <div class="panes">
      <div data-pane="html" class="pane">
        <iframe id="html-frame" title="HTML body" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer"></iframe>
        <p id="no-html" class="note" hidden>This message has no HTML part.</p>
      </div>
      <pre data-pane="text" class="pane" id="text"></pre>
      <div data-pane="headers" class="pane"><table id="headers"><tbody></tbody></table></div>
      <div data-pane="raw" class="pane"><pre id="raw"></pre><p class="note"><a id="raw-link" target="_blank" rel="noreferrer">Open the raw message</a></p></div>
    </div>
  </section>
  <section id="placeholder" class="placeholder"><p>Select a message.</p></section>
</main>
</body>
</html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const INBOX_CSS = `
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fde; --sel: #eaf1ff; --bg: #f7f8fa; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; flex-direction: column; background: var(--bg); }
.bar { display: flex; align-items: center; gap: 16px; padding: 10px 18px; background: #162033; color: #fff; }
.bar h1 { font-size: 16px; margin: 0; font-weight: 600; letter-spacing: .2px; }
.bar h1 span { font-weight: 400; opacity: .75; }
.count { opacity: .8; }
.live { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #3b465c; }
.live[data-state="live"] { background: #1f7a4d; }
.live[data-state="offline"] { background: #9a3b2e; }
button { font: inherit; cursor: pointer; }
button.danger { background: transparent; color: #ffd5cf; border: 1px solid #ffd5cf66; border-radius: 6px; padding: 4px 10px; }
button.danger:disabled { opacity: .4; cursor: default; }
main { flex: 1; display: flex; min-height: 0; }
.list-pane { width: 380px; min-width: 260px; border-right: 1px solid var(--line); background: #fff; overflow: auto; }
.list { list-style: none; margin: 0; padding: 0; }
.item { padding: 10px 14px; border-bottom: 1px solid var(--line); cursor: pointer; outline: none; }
.item:hover, .item:focus { background: #f3f6fb; }
.item.selected { background: var(--sel); box-shadow: inset 3px 0 0 var(--accent); }
.item.new { animation: arrive 1.2s ease-out; }
@keyframes arrive { from { background: #fff6d6; } to { background: transparent; } }
.row1, .row3 { display: flex; justify-content: space-between; gap: 8px; }
.from { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.date, .size, .to { color: var(--muted); font-size: 12px; white-space: nowrap; }
.to { overflow: hidden; text-overflow: ellipsis; }
.subject { margin: 2px 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty, .placeholder { color: var(--muted); padding: 24px; }
.placeholder { flex: 1; display: flex; align-items: center; justify-content: center; }
.view { flex: 1; display: flex; flex-direction: column; min-width: 0; background: #fff; }
.view[hidden], .placeholder[hidden] { display: none; }
.meta { padding: 14px 20px 6px; border-bottom: 1px solid var(--line); }
.meta h2 { margin: 0 0 8px; font-size: 18px; font-weight: 600; word-break: break-word; }
.meta dl { display: grid; grid-template-columns: 56px 1fr; gap: 2px 10px; margin: 0; font-size: 13px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; word-break: break-word; }
.attachments { list-style: none; display: flex; flex-wrap: wrap; gap: 8px; padding: 0; margin: 10px 0 4px; }
.attachments a { display: inline-block; border: 1px solid var(--line); border-radius: 6px; padding: 3px 9px; color: var(--accent); text-decoration: none; font-size: 13px; }
.attachments a span { color: var(--muted); margin-left: 6px; }
.tabs { display: flex; gap: 2px; padding: 0 14px; border-bottom: 1px solid var(--line); }
.tabs button { border: 0; background: none; padding: 8px 12px; color: var(--muted); border-bottom: 2px solid transparent; }
.tabs button[aria-selected="true"] { color: var(--fg); border-bottom-color: var(--accent); }
.panes { flex: 1; min-height: 0; position: relative; }
.pane { position: absolute; inset: 0; overflow: auto; margin: 0; }
.pane[hidden] { display: none; }
iframe { width: 100%; height: 100%; border: 0; background: #fff; }
pre.pane, .pane pre { padding: 14px 20px; margin: 0; font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; margin: 10px 20px; font-size: 12.5px; }
td { padding: 3px 10px 3px 0; vertical-align: top; word-break: break-word; }
td:first-child { color: var(--muted); white-space: nowrap; font-weight: 600; }
.note { color: var(--muted); padding: 0 20px; }
`;

/** The page's script (plain ES2020, no build step). */
export const INBOX_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { messages: [], selected: null, tab: 'html', detail: null, rawLoaded: null };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatSize(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1024 / 1024).toFixed(1) + ' MB';
  }

  function formatDate(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const today = new Date();
    return d.toDateString() === today.toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }

  /** 'Name <address>' → 'Name' for the list (the full text is the tooltip and in the view). */
  function displayName(mailbox) {
    const m = /^(.+?) <[^<>]*>$/.exec(mailbox);
    return m ? m[1] : mailbox;
  }

  function messageUrl(id, rest) {
    return '/api/messages/' + encodeURIComponent(id) + (rest || '');
  }

  function renderList(fresh) {
    const list = $('list');
    list.replaceChildren(...state.messages.map((m) => item(m, fresh && fresh.has(m.id))));
    const n = state.messages.length;
    $('count').textContent = n === 1 ? '1 message' : n + ' messages';
    $('empty').hidden = n > 0;
    $('delete-all').disabled = n === 0;
  }

  function item(m, fresh) {
    const li = el('li', 'item' + (m.id === state.selected ? ' selected' : '') + (fresh ? ' new' : ''));
    li.dataset.id = m.id;
    li.tabIndex = 0;
    const row1 = el('div', 'row1');
    const from = el('span', 'from', displayName(m.from) || '(no sender)');
    from.title = m.from;
    row1.append(from, el('time', 'date', formatDate(m.date)));
    const row3 = el('div', 'row3');
    row3.append(el('span', 'to', 'to ' + (m.to.join(', ') || '(no recipient)')), el('span', 'size', formatSize(m.size)));
    li.append(row1, el('div', 'subject', m.subject || '(no subject)'), row3);
    li.addEventListener('click', () => open(m.id));
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(m.id); });
    return li;
  }

  function add(summary) {
    if (state.messages.some((m) => m.id === summary.id)) return;
    state.messages.push(summary);
    state.messages.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    renderList(new Set([summary.id]));
  }

  async function load() {
    const r = await fetch('/api/messages');
    if (!r.ok) return;
    state.messages = await r.json();
    renderList();
    if (state.selected && !state.messages.some((m) => m.id === state.selected)) close();
  }

  function close() {
    state.selected = null;
    state.detail = null;
    $('view').hidden = true;
    $('placeholder').hidden = false;
    $('html-frame').removeAttribute('src');
    if (location.hash) history.replaceState(null, '', location.pathname);
  }

  async function open(id) {
    state.selected = id;
    for (const li of $('list').children) li.classList.toggle('selected', li.dataset.id === id);
    const r = await fetch(messageUrl(id));
    if (!r.ok || state.selected !== id) return;
    show(await r.json());
    history.replaceState(null, '', '#' + encodeURIComponent(id));
  }

  function show(d) {
    state.detail = d;
    state.rawLoaded = null;
    $('placeholder').hidden = true;
    $('view').hidden = false;
    $('subject').textContent = d.subject || '(no subject)';
    $('from').textContent = d.from;
    $('to').textContent = d.to.join(', ');
    $('date').textContent = formatDate(d.date);
    const summary = state.messages.find((m) => m.id === d.id);
    $('size').textContent = summary ? formatSize(summary.size) : '';
    const attachments = $('attachments');
    attachments.replaceChildren(...d.attachments.map((a, i) => {
      const li = el('li');
      const link = el('a', 'attachment', a.filename || 'attachment-' + (i + 1));
      link.href = messageUrl(d.id, '/attachments/' + i);
      link.setAttribute('download', '');
      link.append(el('span', '', a.contentType + ', ' + formatSize(a.size)));
      li.append(link);
      return li;
    }));
    $('text').textContent = d.text === null ? '(no text part)' : d.text;
    const rows = d.headers.map((h) => {
      const tr = el('tr');
      tr.append(el('td', '', h.name), el('td', '', h.value));
      return tr;
    });
    $('headers').tBodies[0].replaceChildren(...rows);
    $('raw').textContent = '';
    $('raw-link').href = messageUrl(d.id, '/raw');
    const frame = $('html-frame');
    if (d.html !== null) {
      frame.hidden = false;
      $('no-html').hidden = true;
      frame.src = messageUrl(d.id, '/html');
    } else {
      frame.hidden = true;
      frame.removeAttribute('src');
      $('no-html').hidden = false;
    }
    selectTab(d.html === null && state.tab === 'html' ? 'text' : state.tab, false);
  }

  async function selectTab(tab, remember) {
    if (remember !== false) state.tab = tab;
    for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    for (const p of document.querySelectorAll('[data-pane]')) p.hidden = p.dataset.pane !== tab;
    const d = state.detail;
    if (tab === 'raw' && d && state.rawLoaded !== d.id) {
      state.rawLoaded = d.id;
      const summary = state.messages.find((m) => m.id === d.id);
      if (summary && summary.size > 4 * 1024 * 1024) {
        $('raw').textContent = '(' + formatSize(summary.size) + ': too big to show here; open it below)';
        return;
      }
      const r = await fetch(messageUrl(d.id, '/raw'));
      if (state.detail === d) $('raw').textContent = r.ok ? await r.text() : '(cannot load the raw message)';
    }
  }

  async function deleteAll() {
    const n = state.messages.length;
    if (n === 0 || !confirm('Delete all ' + n + ' message' + (n === 1 ? '' : 's') + '?')) return;
    const r = await fetch('/api/messages', { method: 'DELETE' });
    if (r.ok) {
      state.messages = [];
      renderList();
      close();
    }
  }

  function connect() {
    const live = $('live');
    const events = new EventSource('/api/events');
    events.addEventListener('open', () => {
      live.dataset.state = 'live';
      live.textContent = 'live';
      // Anything that arrived while the stream was down.
      load();
    });
    events.addEventListener('error', () => {
      live.dataset.state = 'offline';
      live.textContent = 'reconnecting';
    });
    events.addEventListener('message', (e) => add(JSON.parse(e.data)));
    events.addEventListener('cleared', () => {
      state.messages = [];
      renderList();
      close();
    });
  }

  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => selectTab(b.dataset.tab));
  $('delete-all').addEventListener('click', deleteAll);
  load().then(() => {
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && state.messages.some((m) => m.id === wanted)) open(wanted);
  });
  connect();
})();
`;
