// bbs: browser client for the real-time bulletin board.
//
// How the page stays current:
//   * The list is driven by the server-sent event stream /api/topics/stream:
//     a `snapshot` replaces everything, `topic.*` deltas patch it. Every event
//     carries the cluster-wide version; deltas must arrive in order (exactly
//     current + 1), otherwise we reconnect to get a fresh snapshot.
//   * Writes (POST / PATCH / DELETE) go through fetch. Their results are also
//     applied locally as soon as the server answers, so the author sees the
//     change even while the stream is down; when the matching stream event
//     arrives it is an idempotent replacement.
//
// User text is only ever put into the page with textContent, never parsed as
// HTML. The page runs under a strict CSP: no inline scripts or styles.
'use strict';

(() => {
  const MAX_CODE_POINTS = 2000;
  const TOPICS_URL = '/api/topics';
  const STREAM_URL = '/api/topics/stream';
  const TOKENS_KEY = 'bbs.tokens';
  const HIGHLIGHT_MS = 2000;
  const CLOCK_TICK_MS = 30 * 1000;
  const RETRY_BASE_MS = 3000;
  const RETRY_MAX_MS = 30 * 1000;
  // If the stream has not produced a snapshot by then, fetch the list once
  // over plain HTTP so the page is not blank (e.g. a proxy buffering SSE).
  const FALLBACK_FETCH_MS = 1500;

  const STATUS_TEXT = {
    live: 'live',
    reconnecting: 'reconnecting…',
    offline: 'offline',
  };

  // ---------------------------------------------------------------------
  // DOM handles

  const byId = (id) => document.getElementById(id);
  const dom = {
    form: byId('post-form'),
    comment: byId('comment'),
    button: byId('post-button'),
    error: byId('post-error'),
    counter: byId('counter'),
    hint: byId('post-hint'),
    status: byId('status'),
    statusText: document.querySelector('#status .status-text'),
    list: byId('topics'),
    empty: byId('empty'),
  };

  // ---------------------------------------------------------------------
  // State

  const state = {
    topics: [], // newest first (descending id)
    version: null, // version of the last snapshot or delta applied
    limit: null, // window size announced by the last snapshot
    loaded: false, // some list (snapshot or fallback fetch) has been shown
    snapshotSeen: false,
    posting: false,
  };

  // id -> view: { li, topic, comment, time, edited, actions, editBtn,
  //               deleteBtn, error, editing, busy }
  const views = new Map();

  // ---------------------------------------------------------------------
  // Small helpers

  // Counts Unicode code points (what the server limits), not UTF-16 units.
  const codePoints = (s) => [...s].length;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, label) {
    const b = el('button', className, label);
    b.type = 'button';
    return b;
  }

  function isCtrlEnter(ev) {
    return ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey);
  }

  function isTopic(t) {
    return t !== null && typeof t === 'object' &&
      Number.isInteger(t.id) && typeof t.comment === 'string';
  }

  function byIdDesc(a, b) {
    return b.id - a.id;
  }

  function normalizeTopics(list) {
    return list.filter(isTopic).sort(byIdDesc);
  }

  // Explains whether a comment would be accepted; '' means it is fine.
  function commentProblem(text) {
    const n = codePoints(text.trim());
    if (n === 0) return 'Write something first.';
    if (n > MAX_CODE_POINTS) {
      return `Your comment is ${n} characters; at most ${MAX_CODE_POINTS} are allowed.`;
    }
    return '';
  }

  // Writes only real changes: replacing a text node inside the aria-live
  // list counts as new content to a screen reader even if it is identical.
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function renderCounter(node, text) {
    const n = codePoints(text.trim());
    setText(node, `${n} / ${MAX_CODE_POINTS}`);
    node.classList.toggle('over', n > MAX_CODE_POINTS);
  }

  // ---------------------------------------------------------------------
  // Relative times

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function relativeTime(iso, now = Date.now()) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    // Negative ages (client clock behind the server) also read "just now".
    const minutes = Math.floor((now - t) / 60000);
    if (minutes < 1) return 'just now';
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ago`;
    return dateFormat.format(t);
  }

  function fullTime(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? '' : fullFormat.format(t);
  }

  // Compare instants rather than strings so "Z" vs "+00:00" or differing
  // fractional digits do not mark every topic as edited.
  function wasEdited(topic) {
    if (!topic.updated_at || topic.updated_at === topic.created_at) return false;
    const c = Date.parse(topic.created_at);
    const u = Date.parse(topic.updated_at);
    return Number.isNaN(c) || Number.isNaN(u) ? true : u !== c;
  }

  function refreshTimes() {
    const now = Date.now();
    for (const view of views.values()) {
      setText(view.time, relativeTime(view.topic.created_at, now));
    }
  }

  // ---------------------------------------------------------------------
  // Tokens of topics written from this browser (localStorage "bbs.tokens",
  // a JSON object id -> token). Read-modify-write on every change so that
  // several open tabs do not overwrite each other's entries. If storage is
  // unavailable (private mode, quota) tokens live in memory for this page.

  const memoryTokens = {};

  function readTokens() {
    let stored = {};
    try {
      const parsed = JSON.parse(localStorage.getItem(TOKENS_KEY) || '{}');
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) stored = parsed;
    } catch {
      // Unreadable or corrupt: behave as if empty.
    }
    return Object.assign(stored, memoryTokens);
  }

  function writeTokens(tokens) {
    try {
      localStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
      return true;
    } catch {
      return false;
    }
  }

  function tokenFor(id, tokens = readTokens()) {
    const t = tokens[String(id)];
    return typeof t === 'string' && t !== '' ? t : null;
  }

  function rememberToken(id, token) {
    const tokens = readTokens();
    tokens[String(id)] = token;
    if (!writeTokens(tokens)) memoryTokens[String(id)] = token;
  }

  function forgetToken(id) {
    delete memoryTokens[String(id)];
    const tokens = readTokens();
    if (String(id) in tokens) {
      delete tokens[String(id)];
      writeTokens(tokens);
    }
  }

  // ---------------------------------------------------------------------
  // HTTP

  function retryAfterSeconds(header) {
    if (!header) return 0;
    if (/^\d+$/.test(header.trim())) return Number(header.trim());
    const at = Date.parse(header);
    return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - Date.now()) / 1000));
  }

  function errorMessage(res, data) {
    const err = data && data.error;
    let msg = err && typeof err.message === 'string' && err.message
      ? err.message
      : `Request failed (${res.status}${res.statusText ? ' ' + res.statusText : ''}).`;
    if (res.status === 429) {
      const wait = retryAfterSeconds(res.headers.get('Retry-After'));
      if (wait > 0) msg += ` Try again in ${wait} s.`;
    }
    return msg;
  }

  // Resolves (never rejects) to { ok, status, data, message }.
  async function request(method, url, body, token) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      return { ok: false, status: 0, data: null, message: 'Network error. Check your connection and try again.' };
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch {
        data = null; // empty or non-JSON body (e.g. from a proxy)
      }
    }
    if (res.ok) return { ok: true, status: res.status, data, message: '' };
    return { ok: false, status: res.status, data, message: errorMessage(res, data) };
  }

  // ---------------------------------------------------------------------
  // List model. All mutations go through these and end in render().

  function setTopics(list, highlight) {
    state.topics = normalizeTopics(list);
    state.loaded = true;
    render(highlight);
  }

  // Inserts (if insert) or replaces a topic, keeping newest-first order and
  // the server's window size.
  function upsertTopic(topic, { insert }) {
    if (!isTopic(topic)) return;
    const i = state.topics.findIndex((t) => t.id === topic.id);
    if (i >= 0) {
      state.topics[i] = topic;
    } else if (insert) {
      const at = state.topics.findIndex((t) => t.id < topic.id);
      state.topics.splice(at < 0 ? state.topics.length : at, 0, topic);
      if (state.limit !== null && state.topics.length > state.limit) {
        state.topics.length = state.limit; // drop the oldest
      }
    } else {
      return;
    }
    state.loaded = true;
    render((id) => insert && id === topic.id);
  }

  function removeTopic(id) {
    const before = state.topics.length;
    state.topics = state.topics.filter((t) => t.id !== id);
    if (state.topics.length !== before) render();
  }

  // ---------------------------------------------------------------------
  // Rendering: a keyed reconcile of <li> elements, so that items being
  // edited keep their textarea (and focus) when other topics change, and
  // screen readers only hear about items that really changed.

  function render(shouldHighlight = () => false) {
    const wanted = new Set(state.topics.map((t) => t.id));
    for (const [id, view] of views) {
      if (!wanted.has(id)) {
        view.li.remove();
        views.delete(id);
      }
    }

    const tokens = readTokens();
    let cursor = dom.list.firstElementChild;
    for (const topic of state.topics) {
      let view = views.get(topic.id);
      if (!view) {
        view = createView(topic);
        views.set(topic.id, view);
        updateView(view, topic, tokens);
        if (shouldHighlight(topic.id)) highlight(view);
      } else if (view.topic !== topic) {
        updateView(view, topic, tokens);
      } else {
        updateActions(view, tokens); // a token may have been saved meanwhile
      }
      if (view.li === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        dom.list.insertBefore(view.li, cursor);
      }
    }

    dom.empty.hidden = !(state.loaded && state.topics.length === 0);
  }

  function highlight(view) {
    view.li.classList.add('new');
    setTimeout(() => view.li.classList.remove('new'), HIGHLIGHT_MS);
  }

  function createView(topic) {
    const li = el('li', 'topic');
    li.dataset.id = String(topic.id);
    li.id = `topic-${topic.id}`;

    const comment = el('p', 'comment');
    const meta = el('div', 'meta');
    const idLabel = el('span', 'topic-id', `#${topic.id}`);
    const time = el('time', 'time');
    const edited = el('span', 'edited', '(edited)');
    const actions = el('span', 'actions');
    const editBtn = button('btn btn-ghost edit', 'Edit');
    const deleteBtn = button('btn btn-ghost btn-danger delete', 'Delete');
    const error = el('p', 'item-error');
    error.setAttribute('role', 'alert');

    editBtn.setAttribute('aria-label', `Edit topic #${topic.id}`);
    deleteBtn.setAttribute('aria-label', `Delete topic #${topic.id}`);
    actions.append(editBtn, deleteBtn);
    meta.append(idLabel, time, edited, actions);
    li.append(comment, meta, error);

    const view = {
      li, topic, comment, time, edited, actions, editBtn, deleteBtn, error,
      editing: null, // { box, textarea, counter, save, cancel } while editing
      busy: false, // a PATCH or DELETE is in flight
    };
    editBtn.addEventListener('click', () => startEdit(view));
    deleteBtn.addEventListener('click', () => deleteTopic(view));
    return view;
  }

  function updateView(view, topic, tokens = readTokens()) {
    view.topic = topic;
    // While editing, leave the textarea alone; the new text shows on Cancel.
    if (!view.editing) setText(view.comment, topic.comment);
    view.time.dateTime = topic.created_at;
    view.time.title = fullTime(topic.created_at);
    setText(view.time, relativeTime(topic.created_at));
    const edited = wasEdited(topic);
    view.edited.hidden = !edited;
    view.edited.title = edited ? `Edited ${fullTime(topic.updated_at)}` : '';
    updateActions(view, tokens);
  }

  function updateActions(view, tokens = readTokens()) {
    const mine = tokenFor(view.topic.id, tokens) !== null;
    view.li.classList.toggle('mine', mine);
    view.actions.hidden = !mine || view.editing !== null;
    view.editBtn.disabled = view.busy;
    view.deleteBtn.disabled = view.busy;
  }

  function showItemError(view, message) {
    view.error.textContent = message;
  }

  function setItemBusy(view, busy) {
    view.busy = busy;
    view.li.setAttribute('aria-busy', String(busy));
    if (view.editing) {
      view.editing.save.disabled = busy;
      view.editing.cancel.disabled = busy;
      view.editing.textarea.readOnly = busy;
    }
    updateActions(view);
  }

  // A request for a view finished; is the view still on the page?
  function stillShown(view) {
    return views.get(view.topic.id) === view;
  }

  // ---------------------------------------------------------------------
  // Editing and deleting own topics

  function startEdit(view) {
    if (view.editing || view.busy) return;
    const id = view.topic.id;
    showItemError(view, '');

    const box = el('div', 'editor');
    const textarea = el('textarea', 'edit-text');
    textarea.value = view.topic.comment;
    textarea.rows = 3;
    textarea.setAttribute('aria-label', `Edit topic #${id}`);
    const bar = el('div', 'editor-bar');
    const counter = el('span', 'counter');
    const cancel = button('btn btn-ghost cancel', 'Cancel');
    const save = button('btn btn-primary save', 'Save');
    bar.append(counter, cancel, save);
    box.append(textarea, bar);

    renderCounter(counter, textarea.value);
    textarea.addEventListener('input', () => renderCounter(counter, textarea.value));
    textarea.addEventListener('keydown', (ev) => {
      if (isCtrlEnter(ev)) {
        ev.preventDefault();
        saveEdit(view);
      } else if (ev.key === 'Escape') {
        ev.preventDefault();
        stopEdit(view, true);
      }
    });
    save.addEventListener('click', () => saveEdit(view));
    cancel.addEventListener('click', () => stopEdit(view, true));

    view.editing = { box, textarea, counter, save, cancel };
    view.li.classList.add('editing');
    view.comment.hidden = true;
    view.comment.after(box);
    updateActions(view);

    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }

  function stopEdit(view, restoreFocus) {
    if (!view.editing) return;
    view.editing.box.remove();
    view.editing = null;
    view.li.classList.remove('editing');
    setText(view.comment, view.topic.comment);
    view.comment.hidden = false;
    updateActions(view);
    if (restoreFocus && !view.actions.hidden) view.editBtn.focus();
  }

  async function saveEdit(view) {
    const editing = view.editing;
    if (!editing || view.busy) return;
    const id = view.topic.id;
    const text = editing.textarea.value;

    const problem = commentProblem(text);
    if (problem) {
      showItemError(view, problem);
      return;
    }
    const token = tokenFor(id);
    if (!token) {
      stopEdit(view, false);
      showItemError(view, 'This topic can no longer be edited from this browser.');
      return;
    }

    showItemError(view, '');
    setItemBusy(view, true);
    const res = await request('PATCH', `${TOPICS_URL}/${id}`, { comment: text }, token);
    if (res.status === 404) forgetToken(id);
    if (!stillShown(view)) return; // deleted meanwhile; nothing left to update
    setItemBusy(view, false);

    if (res.ok) {
      const topic = res.data && res.data.topic;
      if (isTopic(topic)) upsertTopic(topic, { insert: false });
      stopEdit(view, true);
    } else if (res.status === 404) {
      stopEdit(view, false);
      showItemError(view, res.message || 'This topic no longer exists.');
    } else {
      showItemError(view, res.message);
    }
  }

  async function deleteTopic(view) {
    if (view.busy) return;
    const id = view.topic.id;
    const token = tokenFor(id);
    if (!token) {
      updateActions(view);
      return;
    }
    if (!window.confirm(`Delete topic #${id}? This cannot be undone.`)) return;

    showItemError(view, '');
    setItemBusy(view, true);
    const res = await request('DELETE', `${TOPICS_URL}/${id}`, undefined, token);
    if (res.ok || res.status === 404) forgetToken(id);
    if (!stillShown(view)) return;
    setItemBusy(view, false);

    if (res.ok) {
      removeTopic(id);
    } else {
      // On 404 the token is gone and the buttons disappear. The item itself
      // stays until the stream says it was deleted: a 404 may also mean the
      // token no longer matches a topic that still exists.
      showItemError(view, res.message || 'This topic no longer exists.');
    }
  }

  // ---------------------------------------------------------------------
  // Posting

  function showPostError(message) {
    dom.error.textContent = message;
    dom.comment.setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  function setPosting(posting) {
    state.posting = posting;
    dom.button.disabled = posting;
    // Read-only rather than disabled: keeps focus and the text, but stops
    // edits that the "clear on success" below would throw away.
    dom.comment.readOnly = posting;
    dom.form.setAttribute('aria-busy', String(posting));
  }

  async function submitPost(ev) {
    ev.preventDefault(); // with JS we post via fetch; without it the form posts itself
    if (state.posting) return;
    const text = dom.comment.value;
    const problem = commentProblem(text);
    if (problem) {
      showPostError(problem);
      dom.comment.focus();
      return;
    }

    showPostError('');
    setPosting(true);
    const res = await request('POST', TOPICS_URL, { comment: text });
    setPosting(false);

    if (!res.ok) {
      showPostError(res.message);
      dom.comment.focus();
      return;
    }
    const topic = res.data && res.data.topic;
    if (isTopic(topic) && res.data.token) rememberToken(topic.id, res.data.token);
    dom.comment.value = '';
    renderCounter(dom.counter, '');
    dom.comment.focus();
    if (isTopic(topic)) upsertTopic(topic, { insert: true });
  }

  // ---------------------------------------------------------------------
  // Live stream

  const stream = {
    source: null,
    retryTimer: 0,
    retryDelay: RETRY_BASE_MS,
    lastResync: 0,
  };

  function setStatus(s) {
    if (dom.status.dataset.state === s) return;
    dom.status.dataset.state = s;
    dom.statusText.textContent = STATUS_TEXT[s];
    dom.status.title = s === 'live' ? 'Receiving updates live' : 'Not receiving updates right now';
  }

  function connect() {
    clearTimeout(stream.retryTimer);
    if (stream.source) stream.source.close();

    const source = new EventSource(STREAM_URL);
    stream.source = source;
    setStatus('reconnecting');

    // Ignore anything from a source we have already replaced.
    const on = (type, handler) => source.addEventListener(type, (ev) => {
      if (stream.source === source) handler(ev, source);
    });
    on('open', () => {
      setStatus('live');
      stream.retryDelay = RETRY_BASE_MS;
    });
    on('error', () => {
      // CONNECTING: the browser is retrying by itself (sending Last-Event-ID).
      // CLOSED: it gave up (e.g. an HTTP error status), so we retry ourselves.
      if (source.readyState === EventSource.CLOSED) {
        setStatus('offline');
        scheduleReconnect();
      } else {
        setStatus('reconnecting');
      }
    });
    on('snapshot', onSnapshot);
    on('topic.created', (ev) => onDelta(ev, (data) => upsertTopic(data.topic, { insert: true })));
    on('topic.updated', (ev) => onDelta(ev, (data) => upsertTopic(data.topic, { insert: false })));
    on('topic.deleted', (ev) => onDelta(ev, (data) => {
      const id = Number(data.id);
      removeTopic(id);
      forgetToken(id);
    }));
  }

  function scheduleReconnect(delay) {
    clearTimeout(stream.retryTimer);
    if (delay === undefined) {
      // Exponential backoff with jitter, so a restarted server is not hit by
      // every open page at the same instant.
      delay = stream.retryDelay * (0.8 + Math.random() * 0.4);
      stream.retryDelay = Math.min(stream.retryDelay * 2, RETRY_MAX_MS);
    }
    stream.retryTimer = setTimeout(connect, delay);
  }

  // A change was missed (or an event was unreadable). A new EventSource sends
  // no Last-Event-ID, so the server answers with a fresh snapshot.
  function resync() {
    const now = Date.now();
    const tooSoon = now - stream.lastResync < RETRY_BASE_MS;
    stream.lastResync = now;
    if (tooSoon) {
      // Each new connection starts with a snapshot, so back-to-back gaps mean
      // something is wrong upstream; do not hammer the server.
      stream.source.close();
      setStatus('reconnecting');
      scheduleReconnect();
    } else {
      connect();
    }
  }

  function parseEvent(ev) {
    try {
      const data = JSON.parse(ev.data);
      return data && typeof data === 'object' ? data : null;
    } catch {
      return null;
    }
  }

  function eventVersion(ev, data) {
    const v = Number(data.version !== undefined ? data.version : ev.lastEventId);
    return Number.isSafeInteger(v) ? v : null;
  }

  function onSnapshot(ev) {
    const data = parseEvent(ev);
    const version = data && eventVersion(ev, data);
    if (!data || version === null || !Array.isArray(data.topics)) {
      resync();
      return;
    }
    setStatus('live');
    state.version = version;
    state.limit = Number.isInteger(data.limit) && data.limit > 0 ? data.limit : null;
    state.snapshotSeen = true;

    // On a re-snapshot (reconnect), highlight only topics newer than what was
    // already shown; the first load highlights nothing.
    const hadList = state.loaded;
    const prevMax = state.topics.length ? state.topics[0].id : -Infinity;
    setTopics(data.topics, hadList ? (id) => id > prevMax : undefined);
  }

  function onDelta(ev, apply) {
    const data = parseEvent(ev);
    const version = data && eventVersion(ev, data);
    if (!data || version === null) {
      resync();
      return;
    }
    if (state.version !== null && version <= state.version) return; // duplicate
    if (state.version === null || version !== state.version + 1) {
      resync(); // missed at least one change
      return;
    }
    state.version = version;
    apply(data);
  }

  // Plain-HTTP fallback for the first paint if the stream is slow to start.
  async function fallbackLoad() {
    if (state.snapshotSeen) return;
    const res = await request('GET', TOPICS_URL);
    if (state.snapshotSeen || !res.ok || !res.data || !Array.isArray(res.data.topics)) return;
    // The version is not adopted: ordering guarantees hold only within the
    // stream, and its snapshot will replace this list anyway.
    setTopics(res.data.topics);
  }

  // ---------------------------------------------------------------------
  // Wiring

  function init() {
    document.documentElement.classList.add('js');

    const platform = (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '';
    if (/mac|iphone|ipad/i.test(platform)) dom.hint.textContent = '⌘+Enter to post';

    dom.form.addEventListener('submit', submitPost);
    dom.comment.addEventListener('input', () => renderCounter(dom.counter, dom.comment.value));
    dom.comment.addEventListener('keydown', (ev) => {
      if (!isCtrlEnter(ev)) return;
      ev.preventDefault();
      // requestSubmit fires the submit event, so both paths share submitPost.
      if (dom.form.requestSubmit) dom.form.requestSubmit();
      else submitPost(ev);
    });
    renderCounter(dom.counter, dom.comment.value);

    // Another tab posted or deleted: show or hide our Edit/Delete buttons.
    window.addEventListener('storage', (ev) => {
      if (ev.key !== null && ev.key !== TOKENS_KEY) return;
      const tokens = readTokens();
      for (const view of views.values()) updateActions(view, tokens);
    });

    setInterval(refreshTimes, CLOCK_TICK_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') refreshTimes();
    });

    // Back online: don't wait for the backoff timer.
    window.addEventListener('online', () => {
      if (!stream.source || stream.source.readyState === EventSource.CLOSED) connect();
    });

    connect();
    setTimeout(fallbackLoad, FALLBACK_FETCH_MS);
  }

  init();
})();
