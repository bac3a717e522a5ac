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
  // The counter turns amber from here, before the limit bites.
  const NEAR_LIMIT = 1800;
  const TOPICS_URL = '/api/topics';
  const STREAM_URL = '/api/topics/stream';
  const TOKENS_KEY = 'bbs.tokens';
  const LANG_KEY = 'bbs.lang';
  const HIGHLIGHT_MS = 2500;
  // Announcements are gathered for this long so a burst of posts is read out
  // as "3 new topics", not as three interruptions.
  const ANNOUNCE_MS = 1000;
  const ANNOUNCE_CHARS = 140;
  const RETRY_BASE_MS = 3000;
  const RETRY_MAX_MS = 30 * 1000;
  // If the stream has not produced a snapshot by then, fetch the list once
  // over plain HTTP so the page is not blank (e.g. a proxy buffering SSE).
  const FALLBACK_FETCH_MS = 1500;
  // The server sends a heartbeat on an idle stream every SSE_HEARTBEAT
  // (15 s by default). A stream silent for twice that may be held back by a
  // proxy that buffers it. localStorage "bbs.delayedMs" overrides the
  // threshold (the browser tests use a short one).
  const HEARTBEAT_MS = 15 * 1000;
  const DELAYED_MS = Number(storageGet('bbs.delayedMs')) > 0
    ? Number(storageGet('bbs.delayedMs')) : 2 * HEARTBEAT_MS;
  // While the stream is delayed the page polls the first page this often.
  const POLL_MS = Math.min(5000, Math.max(500, DELAYED_MS / 2));
  // A stream that ends sooner than this after opening "closed early"; after
  // EARLY_CLOSES of those in a row the page backs off (with jitter) rather
  // than let the browser reconnect at once, again and again.
  const EARLY_MS = 10 * 1000;
  const EARLY_CLOSES = 3;

  // ---------------------------------------------------------------------
  // Text. Every string the page shows comes from here, in the reader's
  // language. `{name}` is replaced by t(). Both languages must have the same
  // keys and placeholders (pkg/web/web_test.go checks).

  const MESSAGES = {
    en: {
      tagline: 'live bulletin board',
      language: 'Language',
      newTopic: 'New topic',
      placeholder: 'Say something…',
      post: 'Post',
      posting: 'Posting…',
      hintCtrl: 'Ctrl+Enter to post · Enter for a new line',
      hintMeta: '⌘+Enter to post · Enter for a new line',
      counterTitle: '{n} of {max} characters',
      topics: 'Topics',
      loading: 'Loading topics…',
      empty: 'No topics yet. Be the first to post.',
      statusLive: 'live',
      statusReconnecting: 'reconnecting…',
      statusOffline: 'offline',
      statusDelayed: 'delayed',
      showOlder: 'Show older topics',
      loadingOlder: 'Loading older topics…',
      olderFailed: 'Older topics could not be loaded. Try again.',
      statusTitleDelayed: 'Updates are arriving late (something on the way holds the stream back); the list is refreshed every few seconds meanwhile',
      statusTitleLive: 'Receiving updates live',
      statusTitleDown: 'Not receiving updates right now; the list catches up when the connection is back',
      mine: 'you',
      mineTitle: 'Written from this browser: you can edit or delete it',
      edited: 'edited',
      editedTitle: 'Edited {time}',
      edit: 'Edit',
      editLabel: 'Edit topic #{id}',
      editHint: 'Ctrl+Enter to save · Esc to cancel',
      delete: 'Delete',
      deleteLabel: 'Delete topic #{id}',
      save: 'Save',
      cancel: 'Cancel',
      confirmDelete: 'Delete this topic?',
      confirmYes: 'Delete',
      confirmNo: 'Keep',
      justNow: 'just now',
      minutesAgo: '{n} min ago',
      hoursAgo: '{n} h ago',
      dayAgo: '1 day ago',
      daysAgo: '{n} days ago',
      announceOne: 'New topic: {text}',
      announceMany: '{n} new topics',
      errEmpty: 'Write something first.',
      errTooLong: 'Your comment is {n} characters; at most {max} are allowed.',
      errNetwork: 'Network error. Check your connection and try again.',
      errHttp: 'Request failed ({status}).',
      errNoToken: 'This topic can no longer be changed from this browser.',
      errRateLimited: 'Too many posts from here. Try again in {s} s.',
      errUnavailable: 'The board cannot save right now; nothing was written. Try again shortly.',
      errOutcomeUnknown: 'The board did not confirm your post, so it may or may not have been saved. Press Post again to find out: it will not be posted twice.',
      errNotReady: 'The server is restarting. Try again in a moment.',
      errForbidden: 'This topic can only be changed from the browser that wrote it.',
      errNotFound: 'This topic no longer exists.',
      errInvalidComment: 'The comment was not accepted: {detail}',
    },
    ja: {
      tagline: 'リアルタイム掲示板',
      language: '言語',
      newTopic: '新しいトピック',
      placeholder: 'なにか書いてみましょう…',
      post: '投稿',
      posting: '投稿中…',
      hintCtrl: 'Ctrl+Enter で投稿・Enter で改行',
      hintMeta: '⌘+Enter で投稿・Enter で改行',
      counterTitle: '{max} 文字中 {n} 文字',
      topics: 'トピック',
      loading: 'トピックを読み込み中…',
      empty: 'まだトピックはありません。最初の投稿をどうぞ。',
      statusLive: 'ライブ',
      statusReconnecting: '再接続中…',
      statusOffline: 'オフライン',
      statusDelayed: '遅延中',
      showOlder: '以前のトピックを表示',
      loadingOlder: '以前のトピックを読み込み中…',
      olderFailed: '以前のトピックを読み込めませんでした。もう一度お試しください。',
      statusTitleDelayed: '更新の到着が遅れています（途中の経路がストリームを止めています）。その間、一覧は数秒ごとに更新されます',
      statusTitleLive: '更新をリアルタイムで受信しています',
      statusTitleDown: '現在は更新を受信していません。接続が戻ると一覧は自動で最新になります',
      mine: 'あなた',
      mineTitle: 'このブラウザから投稿しました。編集・削除できます',
      edited: '編集済み',
      editedTitle: '{time} に編集',
      edit: '編集',
      editLabel: 'トピック #{id} を編集',
      editHint: 'Ctrl+Enter で保存・Esc でキャンセル',
      delete: '削除',
      deleteLabel: 'トピック #{id} を削除',
      save: '保存',
      cancel: 'キャンセル',
      confirmDelete: 'このトピックを削除しますか？',
      confirmYes: '削除する',
      confirmNo: 'やめる',
      justNow: 'たった今',
      minutesAgo: '{n}分前',
      hoursAgo: '{n}時間前',
      dayAgo: '1日前',
      daysAgo: '{n}日前',
      announceOne: '新しいトピック: {text}',
      announceMany: '新しいトピックが {n} 件あります',
      errEmpty: 'まず何か書いてください。',
      errTooLong: 'コメントが {n} 文字あります。{max} 文字以内にしてください。',
      errNetwork: 'ネットワークエラーです。接続を確認して、もう一度お試しください。',
      errHttp: 'リクエストに失敗しました（{status}）。',
      errNoToken: 'このトピックは、このブラウザからはもう変更できません。',
      errRateLimited: '投稿が多すぎます。{s} 秒後にもう一度お試しください。',
      errUnavailable: '現在保存できません（何も書き込まれていません）。少し待ってからお試しください。',
      errOutcomeUnknown: '投稿が保存されたかどうか確認できませんでした。もう一度「投稿」を押すと確かめられます（二重に投稿されることはありません）。',
      errNotReady: 'サーバーが再起動中です。少し待ってからお試しください。',
      errForbidden: 'このトピックは、投稿したブラウザからのみ変更できます。',
      errNotFound: 'このトピックはもう存在しません。',
      errInvalidComment: 'コメントを受け付けられませんでした: {detail}',
    },
  };
  const LANGUAGES = Object.keys(MESSAGES);

  // Server error codes with a message of our own, used where the server's
  // (English) message would not do: in other languages, or when it sent none.
  const ERROR_KEYS = {
    rate_limited: 'errRateLimited',
    unavailable: 'errUnavailable',
    outcome_unknown: 'errOutcomeUnknown',
    not_ready: 'errNotReady',
    draining: 'errNotReady',
    forbidden: 'errForbidden',
    unauthorized: 'errForbidden',
    not_found: 'errNotFound',
    invalid_comment: 'errInvalidComment',
  };

  const i18n = { lang: 'en' };

  function t(key, params = {}) {
    const text = MESSAGES[i18n.lang][key] ?? MESSAGES.en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  }

  // A saved choice wins; otherwise the first of the browser's preferred
  // languages that we have ("ja-JP" counts as "ja"); otherwise English.
  function initialLanguage() {
    const saved = storageGet(LANG_KEY);
    if (LANGUAGES.includes(saved)) return saved;
    const wanted = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || ''];
    for (const tag of wanted) {
      const primary = String(tag).toLowerCase().split('-')[0];
      if (LANGUAGES.includes(primary)) return primary;
    }
    return 'en';
  }

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
    langButtons: [...document.querySelectorAll('#lang [data-lang]')],
    list: byId('topics'),
    empty: byId('empty'),
    olderButton: byId('show-older'),
    olderError: byId('older-error'),
    announcer: byId('announcer'),
  };

  // ---------------------------------------------------------------------
  // State

  const state = {
    topics: [], // newest first (descending id)
    version: null, // version of the last snapshot or delta applied
    limit: null, // window size announced by the last snapshot
    loaded: false, // some list (snapshot or fallback fetch) has been shown
    snapshotSeen: false,
    // Pages older than the live window, loaded with "show older" (GET
    // /api/topics?before=): newest first, below the window. Topics that
    // slide off the window as new ones arrive join them, so the list stays
    // whole.
    older: [],
    olderOpened: false, // some older page was loaded
    olderDone: false, // the oldest topic is shown
    olderBusy: false,
    olderFailed: false,
    posting: false,
    // The message under the form, as a function so that it can be shown
    // again in another language; null when there is none.
    postError: null,
    status: 'offline',
  };

  // id -> view: { li, topic, comment, badge, time, edited, actions, editBtn,
  //               deleteBtn, error, errorMsg, editing, confirming, busy }
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

  function button(className) {
    const b = el('button', className);
    b.type = 'button';
    return b;
  }

  const isMac = /mac|iphone|ipad/i.test(
    (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '');

  // Ctrl+Enter (Cmd+Enter on a Mac) sends; plain Enter is a new line, which is
  // what a multi-line box should do. Never while an input method is composing:
  // there Enter confirms the conversion (Japanese, Chinese, Korean input).
  function isSendKey(ev) {
    return ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ev.isComposing && ev.keyCode !== 229;
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

  // Explains why a comment would be refused, as a message function, or null
  // when it is fine. The server has the last word; this saves a round trip.
  function commentProblem(text) {
    const n = codePoints(text.trim());
    if (n === 0) return () => t('errEmpty');
    if (n > MAX_CODE_POINTS) return () => t('errTooLong', { n, max: MAX_CODE_POINTS });
    return null;
  }

  // Writes only real changes, so screen readers and the layout are not
  // disturbed by text that is the same as before.
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function renderCounter(node, text) {
    const n = codePoints(text.trim());
    setText(node, `${n} / ${MAX_CODE_POINTS}`);
    node.title = t('counterTitle', { n, max: MAX_CODE_POINTS });
    node.classList.toggle('near', n > NEAR_LIMIT && n <= MAX_CODE_POINTS);
    node.classList.toggle('over', n > MAX_CODE_POINTS);
  }

  function storageGet(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null; // storage disabled (some private modes)
    }
  }

  function storageSet(key, value) {
    try {
      localStorage.setItem(key, value);
      return true;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------------
  // Times. Labels change at known instants ("just now" becomes "1 min ago"
  // 60 s after posting), so the clock sleeps until the next one rather than
  // polling.

  const MINUTE = 60 * 1000;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const clock = { timer: 0 };

  // Returns the label for a time and how long it stays right.
  function relativeTime(iso, now) {
    const at = Date.parse(iso);
    if (Number.isNaN(at)) return { text: '', validFor: Infinity };
    // A negative age (our clock behind the server's) also reads "just now".
    const age = Math.max(0, now - at);
    const until = (unit) => unit - (age % unit);
    if (age < MINUTE) return { text: t('justNow'), validFor: MINUTE - age };
    if (age < HOUR) return { text: t('minutesAgo', { n: Math.floor(age / MINUTE) }), validFor: until(MINUTE) };
    if (age < DAY) return { text: t('hoursAgo', { n: Math.floor(age / HOUR) }), validFor: until(HOUR) };
    const days = Math.floor(age / DAY);
    if (days < 7) return { text: days === 1 ? t('dayAgo') : t('daysAgo', { n: days }), validFor: until(DAY) };
    return { text: formatDate(at, { dateStyle: 'medium' }), validFor: Infinity };
  }

  // Formatters are costly to build and a snapshot formats every topic.
  const dateFormats = new Map();

  function formatDate(at, options) {
    const key = `${i18n.lang} ${JSON.stringify(options)}`;
    if (!dateFormats.has(key)) dateFormats.set(key, new Intl.DateTimeFormat(i18n.lang, options));
    return dateFormats.get(key).format(at);
  }

  function fullTime(iso) {
    const at = Date.parse(iso);
    return Number.isNaN(at) ? '' : formatDate(at, { dateStyle: 'medium', timeStyle: 'short' });
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
    clearTimeout(clock.timer);
    const now = Date.now();
    let next = Infinity;
    for (const view of views.values()) {
      const { text, validFor } = relativeTime(view.topic.created_at, now);
      setText(view.time, text);
      next = Math.min(next, validFor);
    }
    if (next !== Infinity) {
      // A little late rather than early, and never busier than once a second.
      clock.timer = setTimeout(refreshTimes, Math.max(1000, next + 50));
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
      const parsed = JSON.parse(storageGet(TOKENS_KEY) || '{}');
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) stored = parsed;
    } catch {
      // Unreadable or corrupt: behave as if empty.
    }
    return Object.assign(stored, memoryTokens);
  }

  function tokenFor(id, tokens = readTokens()) {
    const t = tokens[String(id)];
    return typeof t === 'string' && t !== '' ? t : null;
  }

  function rememberToken(id, token) {
    const tokens = readTokens();
    tokens[String(id)] = token;
    if (!storageSet(TOKENS_KEY, JSON.stringify(tokens))) memoryTokens[String(id)] = token;
  }

  function forgetToken(id) {
    delete memoryTokens[String(id)];
    const tokens = readTokens();
    if (String(id) in tokens) {
      delete tokens[String(id)];
      storageSet(TOKENS_KEY, JSON.stringify(tokens));
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

  function sentence(s) {
    const text = s.trim();
    if (!text) return text;
    const first = text.charAt(0).toUpperCase() + text.slice(1);
    return /[.!?。]$/.test(first) ? first : `${first}.`;
  }

  // Turns a failed answer into a message function. English readers get the
  // server's own words; others get ours for the errors we know, and the
  // server's words (better than nothing) for the rest.
  function failureMessage(res, data) {
    const err = data && typeof data === 'object' ? data.error : null;
    const code = err && typeof err.code === 'string' ? err.code : '';
    const detail = err && typeof err.message === 'string' ? err.message : '';
    const key = ERROR_KEYS[code] || (res.status === 429 ? 'errRateLimited' : '');
    const wait = Math.max(1, retryAfterSeconds(res.headers.get('Retry-After')));
    const status = `${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
    return () => {
      if (detail && i18n.lang === 'en') return sentence(detail);
      if (key) return t(key, { s: wait, detail: detail || status });
      return detail ? sentence(detail) : t('errHttp', { status });
    };
  }

  // Resolves (never rejects) to { ok, status, code, data, message, retryAfter },
  // where code is the server's error code ('' if none), message a message
  // function for failures and retryAfter the Retry-After in seconds (0 if none).
  async function request(method, url, body, token, extraHeaders = {}) {
    const headers = { Accept: 'application/json', ...extraHeaders };
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
      return { ok: false, status: 0, code: '', data: null, message: () => t('errNetwork'), retryAfter: 0 };
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch {
        data = null; // empty or non-JSON body (e.g. from a proxy)
      }
    }
    if (res.ok) return { ok: true, status: res.status, code: '', data, message: null, retryAfter: 0 };
    const err = data && typeof data === 'object' ? data.error : null;
    return {
      ok: false,
      status: res.status,
      code: err && typeof err.code === 'string' ? err.code : '',
      data,
      message: failureMessage(res, data),
      retryAfter: retryAfterSeconds(res.headers.get('Retry-After')),
    };
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
        const dropped = state.topics.splice(state.limit); // drop the oldest
        if (state.olderOpened) state.older = uniqueTopics(dropped.concat(state.older));
      }
    } else {
      const j = state.older.findIndex((t) => t.id === topic.id);
      if (j < 0) return;
      state.older[j] = topic;
    }
    state.loaded = true;
    render((id) => insert && id === topic.id);
  }

  // A delete removes the topic, then slides in the event's fill (the next
  // older topic, as the server read it at this version) unless it is shown
  // already or the page is full: the same rule as the server's window and
  // wire.ApplyEvent, so every tab holds exactly the server's first page.
  function removeTopic(id, fill) {
    const before = state.topics.length + state.older.length;
    state.topics = state.topics.filter((t) => t.id !== id);
    state.older = state.older.filter((t) => t.id !== id);
    const room = state.limit === null || state.topics.length < state.limit;
    if (isTopic(fill) && fill.id !== id && room && !state.topics.some((t) => t.id === fill.id)) {
      const at = state.topics.findIndex((t) => t.id < fill.id);
      state.topics.splice(at < 0 ? state.topics.length : at, 0, fill);
    }
    if (state.topics.length + state.older.length !== before || isTopic(fill)) render();
  }

  function uniqueTopics(list) {
    const seen = new Set();
    return normalizeTopics(list).filter((t) => !seen.has(t.id) && seen.add(t.id));
  }

  // What the list shows: the live window, then the older pages below it.
  function shownTopics() {
    if (state.older.length === 0) return state.topics;
    const last = state.topics.length ? state.topics[state.topics.length - 1].id : Infinity;
    return state.topics.concat(state.older.filter((t) => t.id < last));
  }

  async function loadOlder() {
    if (state.olderBusy || state.olderDone) return;
    const shown = shownTopics();
    if (shown.length === 0) return;
    const oldest = shown[shown.length - 1].id;
    const limit = state.limit || 100;
    state.olderBusy = true;
    state.olderFailed = false;
    renderOlder();
    const res = await request('GET', `${TOPICS_URL}?before=${encodeURIComponent(oldest)}&limit=${limit}`);
    state.olderBusy = false;
    if (!res.ok || !res.data || !Array.isArray(res.data.topics)) {
      state.olderFailed = true;
      renderOlder();
      return;
    }
    const page = normalizeTopics(res.data.topics).filter((t) => t.id < oldest);
    state.olderOpened = true;
    state.older = uniqueTopics(state.older.concat(page));
    if (page.length < limit) state.olderDone = true;
    render();
  }

  function renderOlder() {
    const b = dom.olderButton;
    if (!b) return;
    // Only a full window can have older topics below it.
    b.hidden = !state.loaded || state.olderDone || state.limit === null || state.topics.length < state.limit;
    b.disabled = state.olderBusy;
    setText(b, state.olderBusy ? t('loadingOlder') : t('showOlder'));
    setText(dom.olderError, state.olderFailed ? t('olderFailed') : '');
  }

  // ---------------------------------------------------------------------
  // Rendering: a keyed reconcile of <li> elements, so that items being
  // edited keep their textarea (and focus) when other topics change.

  function render(shouldHighlight = () => false) {
    const list = shownTopics();
    const wanted = new Set(list.map((t) => t.id));
    for (const [id, view] of views) {
      if (!wanted.has(id)) {
        view.li.remove();
        views.delete(id);
      }
    }

    const tokens = readTokens();
    let cursor = dom.list.firstElementChild;
    for (const topic of list) {
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

    if (state.version !== null) dom.list.dataset.version = String(state.version);
    renderEmpty();
    renderOlder();
    refreshTimes();
  }

  function renderEmpty() {
    const show = !state.loaded || state.topics.length === 0;
    dom.empty.hidden = !show;
    dom.empty.classList.toggle('loading', !state.loaded);
    if (show) setText(dom.empty, state.loaded ? t('empty') : t('loading'));
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
    const badge = el('span', 'badge');
    const time = el('time', 'time');
    const edited = el('span', 'edited');
    const actions = el('span', 'actions');
    const editBtn = button('btn btn-ghost edit');
    const deleteBtn = button('btn btn-ghost btn-danger delete');
    const error = el('p', 'item-error');
    error.setAttribute('role', 'alert');

    actions.append(editBtn, deleteBtn);
    meta.append(idLabel, badge, time, edited, actions);
    li.append(comment, meta, error);

    const view = {
      li, topic, comment, badge, time, edited, actions, editBtn, deleteBtn, error,
      errorMsg: null, // message function of the error shown under the item
      editing: null, // { box, textarea, counter, hint, save, cancel } while editing
      confirming: null, // { box, question, yes, no } while asking about a delete
      busy: false, // a PATCH or DELETE is in flight
    };
    editBtn.addEventListener('click', () => startEdit(view));
    deleteBtn.addEventListener('click', () => askDelete(view));
    labelView(view);
    return view;
  }

  // Sets every translated label of a view; runs again on a language switch.
  function labelView(view) {
    const id = view.topic.id;
    setText(view.editBtn, t('edit'));
    view.editBtn.setAttribute('aria-label', t('editLabel', { id }));
    setText(view.deleteBtn, t('delete'));
    view.deleteBtn.setAttribute('aria-label', t('deleteLabel', { id }));
    setText(view.badge, t('mine'));
    view.badge.title = t('mineTitle');
    setText(view.edited, t('edited'));
    view.edited.title = wasEdited(view.topic) ? t('editedTitle', { time: fullTime(view.topic.updated_at) }) : '';
    view.time.title = fullTime(view.topic.created_at);
    setText(view.error, view.errorMsg ? view.errorMsg() : '');
    if (view.editing) {
      const e = view.editing;
      e.textarea.setAttribute('aria-label', t('editLabel', { id }));
      setText(e.hint, t('editHint'));
      setText(e.save, t('save'));
      setText(e.cancel, t('cancel'));
      renderCounter(e.counter, e.textarea.value);
    }
    if (view.confirming) {
      const c = view.confirming;
      setText(c.question, t('confirmDelete'));
      setText(c.yes, t('confirmYes'));
      setText(c.no, t('confirmNo'));
    }
  }

  function updateView(view, topic, tokens = readTokens()) {
    view.topic = topic;
    // While editing, leave the textarea alone; the new text shows on Cancel.
    if (!view.editing) setText(view.comment, topic.comment);
    view.time.dateTime = topic.created_at;
    view.edited.hidden = !wasEdited(topic);
    labelView(view);
    updateActions(view, tokens);
  }

  function updateActions(view, tokens = readTokens()) {
    const mine = tokenFor(view.topic.id, tokens) !== null;
    view.li.classList.toggle('mine', mine);
    view.badge.hidden = !mine;
    view.actions.hidden = !mine || view.editing !== null || view.confirming !== null;
    view.editBtn.disabled = view.busy;
    view.deleteBtn.disabled = view.busy;
    if (!mine && view.confirming) stopConfirm(view, false);
  }

  function showItemError(view, message) {
    view.errorMsg = message;
    setText(view.error, message ? message() : '');
  }

  function setItemBusy(view, busy) {
    view.busy = busy;
    view.li.setAttribute('aria-busy', String(busy));
    if (view.editing) {
      view.editing.save.disabled = busy;
      view.editing.cancel.disabled = busy;
      view.editing.textarea.readOnly = busy;
    }
    if (view.confirming) {
      view.confirming.yes.disabled = busy;
      view.confirming.no.disabled = busy;
    }
    updateActions(view);
  }

  // A request for a view finished; is the view still on the page?
  function stillShown(view) {
    return views.get(view.topic.id) === view;
  }

  // ---------------------------------------------------------------------
  // Announcements for screen readers: topics others post while we watch.

  const announcements = { pending: [], timer: 0 };

  function announce(topic) {
    announcements.pending.push(topic);
    if (!announcements.timer) announcements.timer = setTimeout(flushAnnouncements, ANNOUNCE_MS);
  }

  function flushAnnouncements() {
    // A post of ours can come back on the stream before its POST answers;
    // by now its token is saved, so it is left out here.
    const list = announcements.pending.filter((topic) => !tokenFor(topic.id));
    announcements.pending = [];
    announcements.timer = 0;
    if (list.length === 0) return;
    let text;
    if (list.length === 1) {
      const chars = [...list[0].comment.replace(/\s+/g, ' ').trim()];
      const short = chars.length > ANNOUNCE_CHARS ? `${chars.slice(0, ANNOUNCE_CHARS).join('')}…` : chars.join('');
      text = t('announceOne', { text: short });
    } else {
      text = t('announceMany', { n: list.length });
    }
    // Set even when equal to the last text: a live region only speaks changes.
    dom.announcer.textContent = '';
    setTimeout(() => { dom.announcer.textContent = text; }, 50);
  }

  // ---------------------------------------------------------------------
  // Editing and deleting own topics

  function startEdit(view) {
    if (view.editing || view.busy) return;
    stopConfirm(view, false);
    showItemError(view, null);

    const box = el('div', 'editor');
    const textarea = el('textarea', 'edit-text');
    textarea.value = view.topic.comment;
    textarea.rows = 3;
    const bar = el('div', 'editor-bar');
    const counter = el('span', 'counter');
    const hint = el('span', 'hint');
    const cancel = button('btn btn-ghost cancel');
    const save = button('btn btn-primary save');
    bar.append(counter, hint, cancel, save);
    box.append(textarea, bar);

    textarea.addEventListener('input', () => renderCounter(counter, textarea.value));
    textarea.addEventListener('keydown', (ev) => {
      if (isSendKey(ev)) {
        ev.preventDefault();
        saveEdit(view);
      } else if (ev.key === 'Escape' && !ev.isComposing) {
        ev.preventDefault();
        stopEdit(view, true);
      }
    });
    save.addEventListener('click', () => saveEdit(view));
    cancel.addEventListener('click', () => stopEdit(view, true));

    view.editing = { box, textarea, counter, hint, save, cancel };
    labelView(view);
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
      showItemError(view, () => t('errNoToken'));
      return;
    }

    showItemError(view, null);
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
      showItemError(view, res.message);
    } else {
      showItemError(view, res.message);
    }
  }

  // Deleting cannot be undone, so it takes a second click on an inline
  // question. "Keep" sits where "Delete" was: a double click keeps the topic.
  function askDelete(view) {
    if (view.busy || view.confirming || view.editing) return;
    if (!tokenFor(view.topic.id)) {
      updateActions(view);
      return;
    }
    showItemError(view, null);
    const box = el('span', 'confirm');
    box.setAttribute('role', 'group');
    const question = el('span', 'confirm-question');
    const yes = button('btn btn-ghost btn-danger confirm-delete');
    const no = button('btn btn-ghost keep');
    box.append(question, yes, no);
    yes.addEventListener('click', () => deleteTopic(view));
    no.addEventListener('click', () => stopConfirm(view, true));
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        stopConfirm(view, true);
      }
    });
    view.confirming = { box, question, yes, no };
    labelView(view);
    view.actions.after(box);
    updateActions(view);
    no.focus();
  }

  function stopConfirm(view, restoreFocus) {
    if (!view.confirming) return;
    view.confirming.box.remove();
    view.confirming = null;
    updateActions(view);
    if (restoreFocus && !view.actions.hidden) view.deleteBtn.focus();
  }

  async function deleteTopic(view) {
    if (view.busy) return;
    const id = view.topic.id;
    const token = tokenFor(id);
    if (!token) {
      stopConfirm(view, false);
      showItemError(view, () => t('errNoToken'));
      return;
    }

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
      stopConfirm(view, false);
      showItemError(view, res.message);
    }
  }

  // ---------------------------------------------------------------------
  // Posting
  //
  // Every post carries an Idempotency-Key: the server makes at most one topic
  // per key, and answers a repeat with that topic and its token. So when the
  // outcome of a post is unknown (the network failed under it, a proxy timed
  // out, or the server answered 503 outcome_unknown because its database did
  // not confirm the write) the same post is sent again with the same key, a
  // few times with backoff: it lands once, never twice. The key stays with
  // the text until the post is confirmed, so pressing Post again after a
  // failure can never make a duplicate either; new text gets a new key.

  const POST_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
  const POST_RETRY_MAX_WAIT_MS = 10 * 1000;
  const pendingPost = { text: null, key: null };

  // 128 random bits, hex: within the server's 16..128 characters of
  // [A-Za-z0-9_-]. getRandomValues works on plain-HTTP pages too, where
  // crypto.randomUUID does not exist.
  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The key for this text: the pending one if the text is the same post (as
  // the server will store it), a new one otherwise.
  function postKey(text) {
    const normalized = text.replace(/\r\n/g, '\n').trim();
    if (pendingPost.text !== normalized) {
      pendingPost.text = normalized;
      pendingPost.key = newIdempotencyKey();
    }
    return pendingPost.key;
  }

  // Whether the post may have reached the database although we have no
  // answer saying so: then only a retry with the same key can tell.
  function outcomeUnknown(res) {
    return res.status === 0 || res.status === 502 || res.status === 504 ||
      (res.status === 503 && res.code === 'outcome_unknown');
  }

  const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  async function sendPost(text) {
    const headers = { 'Idempotency-Key': postKey(text) };
    let res = await request('POST', TOPICS_URL, { comment: text }, undefined, headers);
    for (const delay of POST_RETRY_DELAYS_MS) {
      if (!outcomeUnknown(res)) break;
      await pause(Math.min(POST_RETRY_MAX_WAIT_MS, Math.max(delay, res.retryAfter * 1000)));
      res = await request('POST', TOPICS_URL, { comment: text }, undefined, headers);
    }
    return res;
  }

  function showPostError(message) {
    state.postError = message;
    setText(dom.error, message ? message() : '');
    dom.comment.setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  function setPosting(posting) {
    state.posting = posting;
    dom.button.disabled = posting;
    setText(dom.button, posting ? t('posting') : t('post'));
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

    showPostError(null);
    setPosting(true);
    const res = await sendPost(text);
    setPosting(false);

    if (!res.ok) {
      // The text stays in the box, so nothing typed is lost; so does its
      // key, so posting it again cannot make a second topic.
      showPostError(outcomeUnknown(res) ? () => t('errOutcomeUnknown') : res.message);
      // The key is spent: the server holds it for another text (ours only
      // looked the same here), or its topic was deleted since. The next
      // press starts afresh.
      if (res.code === 'idempotency_key_reused' || res.code === 'deleted') pendingPost.text = null;
      dom.comment.focus();
      return;
    }
    pendingPost.text = null;
    pendingPost.key = null;
    const topic = res.data && res.data.topic;
    if (isTopic(topic) && res.data.token) rememberToken(topic.id, res.data.token);
    dom.comment.value = '';
    renderCounter(dom.counter, '');
    dom.comment.focus();
    if (isTopic(topic)) upsertTopic(topic, { insert: true });
  }

  // ---------------------------------------------------------------------
  // Live stream
  //
  // One stream per browser, shared by its tabs. Browsers allow six HTTP/1.1
  // connections per origin for all tabs of a profile together, so a stream
  // per tab would leave no connection to post with from the sixth tab on,
  // and a seventh tab would never load. Instead the tabs elect a leader
  // with the Web Locks API: the tab that holds the lock SHARE_NAME (for as
  // long as it lives) holds the EventSource and relays every event (name,
  // data, id) to the other tabs over a BroadcastChannel. The followers apply
  // relayed events with the same rules as the leader (onSnapshot, onDelta:
  // versions in order, duplicates ignored, a gap asks for a snapshot). A
  // follower that joins, or sees a gap, asks the leader, who answers with
  // its current list as a snapshot. When the leader tab closes, the lock
  // passes to a waiting tab at once; it opens the stream with
  // ?lastEventId= set to the last version it applied (a new EventSource
  // cannot send Last-Event-ID), so the server replays exactly what came
  // after it and no tab misses or repeats an event. Web Locks need a secure
  // context (HTTPS, or localhost); on a plain-HTTP page the tabs elect the
  // leader with a lease in localStorage instead (see leaseTick). Without
  // BroadcastChannel or storage every tab holds a stream of its own.

  const SHARE_NAME = 'bbs-stream';
  const ASK_MIN_MS = 300;
  const LEASE_KEY = 'bbs.streamLeader';
  const LEASE_MS = 5000;
  const LEASE_TICK_MS = 1000;

  const stream = {
    source: null,
    retryTimer: 0,
    retryDelay: RETRY_BASE_MS,
    lastResync: 0,
    openedAt: 0, // when the current connection opened (0: not open)
    earlyCloses: 0, // connections in a row that ended within EARLY_MS
    activity: 0, // when the stream last delivered something (or was checked)
    watchTimer: 0,
    polling: false,
  };

  const share = {
    channel: null,
    // 'leader' holds the stream for every tab, 'follower' applies what the
    // leader relays, 'solo' holds a stream of its own (no sharing).
    role: 'solo',
    tab: '',
    claiming: false,
    askTimer: 0,
    lastAsk: 0,
  };

  const STATUS_KEYS = {
    live: 'statusLive', delayed: 'statusDelayed', reconnecting: 'statusReconnecting', offline: 'statusOffline',
  };
  const STATUS_TITLES = { live: 'statusTitleLive', delayed: 'statusTitleDelayed' };

  function setStatus(s) {
    state.status = s;
    if (dom.status.dataset.state !== s) dom.status.dataset.state = s;
    setText(dom.statusText, t(STATUS_KEYS[s]));
    dom.status.title = t(STATUS_TITLES[s] || 'statusTitleDown');
    relay({ type: 'status', status: s });
  }

  function setRole(role) {
    share.role = role;
    document.documentElement.dataset.streamRole = role;
  }

  // Sends a message to the other tabs, when this tab leads them.
  function relay(msg) {
    if (share.channel && share.role === 'leader') share.channel.postMessage(msg);
  }

  function startStream() {
    const locks = navigator.locks && typeof navigator.locks.request === 'function';
    const lease = !locks && storageSet(LEASE_KEY + '.probe', '1');
    if (typeof BroadcastChannel !== 'function' || (!locks && !lease)) {
      setRole('solo');
      connect();
      return;
    }
    share.tab = newIdempotencyKey();
    share.channel = new BroadcastChannel(SHARE_NAME);
    share.channel.addEventListener('message', (ev) => onShared(ev.data));
    setRole('follower');
    setStatus('reconnecting');
    if (!locks) {
      // The lease: the leader renews it every LEASE_TICK_MS and gives it
      // up when its page goes; a follower claims it once it has run out.
      // Two tabs may both lead for a moment: every tab ignores events it
      // already has (by version), and the one that finds the other's
      // lease steps down.
      setInterval(leaseTick, LEASE_TICK_MS);
      window.addEventListener('pagehide', () => {
        if (share.role !== 'leader') return;
        const l = readLease();
        if (l && l.tab === share.tab) storageSet(LEASE_KEY, '');
        share.channel.postMessage({ type: 'resign' });
      });
      askSnapshot();
      leaseTick();
      return;
    }
    navigator.locks.request(SHARE_NAME, () => {
      becomeLeader();
      return new Promise(() => {}); // held for the life of this tab
    }).catch(() => {
      // The lock cannot be had (e.g. storage blocked): stream on our own.
      if (share.role === 'follower') becomeLeader();
    });
    askSnapshot();
  }

  function becomeLeader() {
    clearTimeout(share.askTimer);
    setRole('leader');
    document.documentElement.dataset.leaderSince = String(Date.now()); // read by the browser tests
    share.channel.postMessage({ type: 'leader' });
    // Resume from the last version this tab applied: the server sends what
    // came after it (or a fresh snapshot if that is not known for sure).
    connect(true);
  }

  function readLease() {
    try {
      const l = JSON.parse(storageGet(LEASE_KEY) || 'null');
      return l && typeof l.tab === 'string' && Number.isFinite(l.until) ? l : null;
    } catch {
      return null;
    }
  }

  function writeLease() {
    return storageSet(LEASE_KEY, JSON.stringify({ tab: share.tab, until: Date.now() + LEASE_MS }));
  }

  function leaseTick() {
    const lease = readLease();
    const taken = lease && lease.tab !== share.tab && lease.until > Date.now();
    if (share.role === 'leader') {
      if (taken) stepDown();
      else writeLease();
    } else if (!taken) {
      claimLease();
    }
  }

  // Claims a free lease; leads if it is still ours a moment later (another
  // tab claiming at the same time may have written after us).
  function claimLease() {
    if (share.role !== 'follower' || share.claiming || !writeLease()) return;
    share.claiming = true;
    setTimeout(() => {
      share.claiming = false;
      const l = readLease();
      if (share.role === 'follower' && l && l.tab === share.tab) becomeLeader();
    }, 50 + Math.random() * 100);
  }

  function stepDown() {
    clearTimeout(stream.retryTimer);
    if (stream.source) stream.source.close();
    stream.source = null;
    setRole('follower');
    askSnapshot();
  }

  // Asks the leader for its list, at most every ASK_MIN_MS.
  function askSnapshot() {
    if (share.role !== 'follower' || share.askTimer) return;
    const wait = Math.max(0, share.lastAsk + ASK_MIN_MS - Date.now());
    share.askTimer = setTimeout(() => {
      share.askTimer = 0;
      if (share.role !== 'follower') return;
      share.lastAsk = Date.now();
      share.channel.postMessage({ type: 'ask', from: share.tab });
    }, wait);
  }

  function onShared(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (share.role === 'leader') {
      if (msg.type === 'ask') answerSnapshot(msg.from);
      return;
    }
    if (share.role !== 'follower') return;
    switch (msg.type) {
      case 'event':
        if (msg.to && msg.to !== share.tab) return; // another tab's answer
        if (Object.hasOwn(STREAM_EVENTS, msg.name)) {
          STREAM_EVENTS[msg.name]({ data: msg.data, lastEventId: msg.id });
        }
        break;
      case 'status':
        if (STATUS_KEYS[msg.status]) setStatus(msg.status);
        break;
      case 'leader':
        // A new leader: if we still wait for a list, ask it.
        if (state.version === null) askSnapshot();
        break;
      case 'resign':
        // The leader's page is going (lease election only): take over now.
        if (!navigator.locks) setTimeout(claimLease, Math.random() * 100);
        break;
      default:
    }
  }

  // The leader's answer to a tab that asked: its list as a snapshot. Until
  // the leader has one itself, the stream's snapshot reaches every tab.
  function answerSnapshot(to) {
    if (state.version === null || typeof to !== 'string') return;
    const data = JSON.stringify({ version: state.version, limit: state.limit, topics: state.topics });
    share.channel.postMessage({ type: 'event', name: 'snapshot', to, data, id: String(state.version) });
    share.channel.postMessage({ type: 'status', status: state.status });
  }

  // What each stream event does; the leader relays them as they come.
  const STREAM_EVENTS = {
    snapshot: onSnapshot,
    'topic.created': (ev) => onDelta(ev, (data) => {
      const known = isTopic(data.topic) && views.has(data.topic.id);
      upsertTopic(data.topic, { insert: true });
      if (!known && views.has(data.topic.id)) announce(data.topic);
    }),
    'topic.updated': (ev) => onDelta(ev, (data) => upsertTopic(data.topic, { insert: false })),
    'topic.deleted': (ev) => onDelta(ev, (data) => {
      const id = Number(data.id);
      removeTopic(id, data.fill);
      forgetToken(id);
    }),
  };

  // resume: continue after the version this tab shows rather than start
  // afresh with a snapshot.
  function connect(resume) {
    if (share.role === 'follower') return;
    clearTimeout(stream.retryTimer);
    if (stream.source) stream.source.close();

    const url = resume === true && state.version !== null
      ? `${STREAM_URL}?lastEventId=${encodeURIComponent(state.version)}` : STREAM_URL;
    const source = new EventSource(url);
    stream.source = source;
    setStatus('reconnecting');

    // Ignore anything from a source we have already replaced.
    const on = (type, handler) => source.addEventListener(type, (ev) => {
      if (stream.source === source) handler(ev, source);
    });
    on('open', () => {
      stream.openedAt = Date.now();
      stream.activity = stream.openedAt;
      // A proxy that holds the stream back answers at once all the same:
      // "live" comes with the first event (the snapshot, or a replay).
      if (state.status !== 'delayed') setStatus('live');
    });
    on('error', () => {
      const lived = stream.openedAt ? Date.now() - stream.openedAt : 0;
      stream.openedAt = 0;
      if (lived >= EARLY_MS) {
        stream.earlyCloses = 0;
        stream.retryDelay = RETRY_BASE_MS;
      } else {
        stream.earlyCloses++;
      }
      // CONNECTING: the browser is retrying by itself (sending Last-Event-ID,
      // so the server replays exactly what we missed), unless the stream
      // keeps closing early: then we back off. CLOSED: it gave up (e.g. an
      // HTTP error status), so we retry ourselves.
      if (source.readyState === EventSource.CLOSED || stream.earlyCloses >= EARLY_CLOSES) {
        source.close();
        if (state.status !== 'delayed') setStatus('offline');
        scheduleReconnect();
      } else if (state.status !== 'delayed') {
        setStatus('reconnecting');
      }
    });
    for (const [name, handler] of Object.entries(STREAM_EVENTS)) {
      on(name, (ev) => {
        stream.activity = Date.now();
        relay({ type: 'event', name, data: ev.data, id: ev.lastEventId });
        handler(ev);
        if (state.status === 'delayed') setStatus('live'); // the stream delivers again
      });
    }
    watchStream();
  }

  // The stream's watchdog (leader or solo tab). A browser does not show the
  // server's heartbeats (SSE comments) to the page, so a stream silent for
  // DELAYED_MS is checked against GET /api/topics (served from memory, with
  // its version): if the first page is newer than what the stream brought,
  // the stream is held back somewhere. The page then says "delayed", shows
  // the polled list (only ever a newer one) and polls every POLL_MS until
  // the stream delivers again. A quiet board costs one request per
  // DELAYED_MS.
  function watchStream() {
    if (stream.watchTimer) return;
    stream.watchTimer = setInterval(() => {
      if (share.role === 'follower') return;
      const silent = Date.now() - stream.activity >= DELAYED_MS;
      if (silent || state.status === 'delayed') pollList();
    }, POLL_MS);
  }

  async function pollList() {
    if (stream.polling) return;
    stream.polling = true;
    const asked = Date.now();
    const res = await request('GET', TOPICS_URL);
    stream.polling = false;
    if (share.role === 'follower') return;
    const data = res.ok && res.data;
    if (!data || !Array.isArray(data.topics) || !Number.isSafeInteger(data.version)) return;
    if (state.version !== null && data.version <= state.version) {
      // Nothing missed: a quiet stream is as good as a heartbeat.
      if (state.status !== 'delayed') stream.activity = Math.max(stream.activity, asked);
      return;
    }
    // The first page at version V is what the stream's snapshot at V would
    // be; events up to V that arrive later are then duplicates.
    const snapshot = JSON.stringify({ version: data.version, limit: state.limit, topics: data.topics });
    const prevMax = state.topics.length ? state.topics[0].id : -Infinity;
    const hadList = state.loaded;
    state.version = data.version;
    state.snapshotSeen = true;
    setTopics(data.topics, hadList ? (id) => id > prevMax : undefined);
    relay({ type: 'event', name: 'snapshot', data: snapshot, id: String(data.version) });
    setStatus('delayed');
  }

  function scheduleReconnect(delay) {
    clearTimeout(stream.retryTimer);
    if (delay === undefined) {
      // Exponential backoff with jitter, so a restarted server is not hit by
      // every open page at the same instant.
      delay = stream.retryDelay * (0.8 + Math.random() * 0.4);
      stream.retryDelay = Math.min(stream.retryDelay * 2, RETRY_MAX_MS);
    }
    // The new connection resumes after the version shown.
    stream.retryTimer = setTimeout(() => connect(true), delay);
  }

  // A change was missed (or an event was unreadable). A follower asks the
  // leader for its list. A new EventSource sends no Last-Event-ID, so the
  // server answers with a fresh snapshot.
  function resync() {
    if (share.role === 'follower') {
      askSnapshot();
      return;
    }
    const now = Date.now();
    const tooSoon = now - stream.lastResync < RETRY_BASE_MS;
    stream.lastResync = now;
    if (tooSoon) {
      // Each new connection starts with a snapshot, so back-to-back gaps mean
      // something is wrong upstream; do not hammer the server.
      if (stream.source) stream.source.close();
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
    dom.list.dataset.version = String(version);
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
  // Language

  // Shows the page in lang; persist is false for the automatic first choice,
  // so a later change of the browser's language still counts.
  function setLanguage(lang, persist) {
    if (!LANGUAGES.includes(lang)) return;
    i18n.lang = lang;
    if (persist) storageSet(LANG_KEY, lang);
    document.documentElement.lang = lang;

    for (const node of document.querySelectorAll('[data-i18n]')) setText(node, t(node.dataset.i18n));
    for (const node of document.querySelectorAll('[data-i18n-placeholder]')) {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    }
    for (const node of document.querySelectorAll('[data-i18n-aria-label]')) {
      node.setAttribute('aria-label', t(node.dataset.i18nAriaLabel));
    }
    for (const b of dom.langButtons) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));

    setText(dom.hint, t(isMac ? 'hintMeta' : 'hintCtrl'));
    setText(dom.button, state.posting ? t('posting') : t('post'));
    renderCounter(dom.counter, dom.comment.value);
    setText(dom.error, state.postError ? state.postError() : '');
    setStatus(state.status);
    renderEmpty();
    renderOlder();
    for (const view of views.values()) labelView(view);
    refreshTimes();
  }

  // ---------------------------------------------------------------------
  // Wiring

  function init() {
    document.documentElement.classList.add('js');
    setLanguage(initialLanguage(), false);

    for (const b of dom.langButtons) {
      b.addEventListener('click', () => setLanguage(b.dataset.lang, true));
    }

    dom.form.addEventListener('submit', submitPost);
    if (dom.olderButton) dom.olderButton.addEventListener('click', loadOlder);
    dom.comment.addEventListener('input', () => renderCounter(dom.counter, dom.comment.value));
    dom.comment.addEventListener('keydown', (ev) => {
      if (!isSendKey(ev)) return;
      ev.preventDefault();
      // requestSubmit fires the submit event, so both paths share submitPost.
      if (dom.form.requestSubmit) dom.form.requestSubmit();
      else submitPost(ev);
    });

    // Another tab posted, deleted or switched language.
    window.addEventListener('storage', (ev) => {
      if (ev.key === null || ev.key === TOKENS_KEY) {
        const tokens = readTokens();
        for (const view of views.values()) updateActions(view, tokens);
      }
      if (ev.key === null || ev.key === LANG_KEY) {
        const saved = storageGet(LANG_KEY);
        if (LANGUAGES.includes(saved) && saved !== i18n.lang) setLanguage(saved, false);
      }
    });

    // Timers are throttled in background tabs; catch up on return.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') refreshTimes();
    });

    window.addEventListener('offline', () => setStatus('offline'));
    // Back online: don't wait for the backoff timer. Reconnect even if the
    // stream looks open: after a network change it may be a dead connection
    // that the browser will not notice for a long time, and a new one
    // starts with a fresh snapshot.
    window.addEventListener('online', () => {
      if (share.role === 'follower') askSnapshot();
      else connect();
    });

    startStream();
    setTimeout(fallbackLoad, FALLBACK_FETCH_MS);
  }

  init();
})();
