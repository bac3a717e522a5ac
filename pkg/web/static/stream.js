// The live stream: the server-sent events of /api/topics/stream. A
// `snapshot` replaces the list, `topic.*` deltas change it; every event
// carries the cluster-wide version, and a delta must be exactly the next
// one (board.js deltaStep), or the list is fetched afresh. The tab that
// leads (share.js) holds the EventSource and relays its events; every tab
// applies them the same way. Here too: backing off a stream that keeps
// closing, and the "delayed" state of a stream held back by a proxy.
import { deltaStep, isTopic } from './board.js';
import { dom, setText } from './dom.js';
import { TOPICS_URL, request } from './http.js';
import { t } from './i18n.js';
import { applyChange, setTopics } from './list.js';
import { announce, views } from './render.js';
import { askSnapshot, relay, setRole, share, startSharing } from './share.js';
import { state } from './state.js';
import { forgetToken, storageGet } from './storage.js';

const STREAM_URL = '/api/topics/stream';
const RETRY_BASE_MS = 3000;
const RETRY_MAX_MS = 30 * 1000;
// The server sends a heartbeat on an idle stream every SSE_HEARTBEAT, and
// says how often in the page (<meta name="bbs-heartbeat">, milliseconds). A
// stream silent for twice that may be held back by a proxy that buffers
// it. localStorage "bbs.delayedMs" overrides the threshold (the browser
// tests use a short one).
const HEARTBEAT_MS = Number(document.querySelector('meta[name="bbs-heartbeat"]')?.content) || 15 * 1000;
const DELAYED_MS = Number(storageGet('bbs.delayedMs')) > 0
  ? Number(storageGet('bbs.delayedMs')) : 2 * HEARTBEAT_MS;
// While the stream is delayed the page polls the first page this often.
const POLL_MS = Math.min(5000, Math.max(500, DELAYED_MS / 2));
// A stream that ends sooner than this after opening "closed early"; after
// EARLY_CLOSES of those in a row the page backs off (with jitter) rather
// than let the browser reconnect at once, again and again.
const EARLY_MS = 10 * 1000;
const EARLY_CLOSES = 3;

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

const STATUS_KEYS = {
  live: 'statusLive', delayed: 'statusDelayed', reconnecting: 'statusReconnecting', offline: 'statusOffline',
};
const STATUS_TITLES = { live: 'statusTitleLive', delayed: 'statusTitleDelayed' };

export function setStatus(s) {
  if (!STATUS_KEYS[s]) return;
  state.status = s;
  if (dom.status.dataset.state !== s) dom.status.dataset.state = s;
  setText(dom.statusText, t(STATUS_KEYS[s]));
  dom.status.title = t(STATUS_TITLES[s] || 'statusTitleDown');
  relay({ type: 'status', status: s });
}

// What each stream event does; the leader relays them as they come.
const STREAM_EVENTS = {
  snapshot: onSnapshot,
  'topic.created': (ev) => onDelta(ev, 'topic.created'),
  'topic.updated': (ev) => onDelta(ev, 'topic.updated'),
  'topic.deleted': (ev) => onDelta(ev, 'topic.deleted'),
};

// Starts following the board: as the tabs' leader, a follower, or alone.
export function startStream() {
  const shared = startSharing({
    // Resume from the last version this tab applied: the server sends what
    // came after it (or a fresh snapshot if that is not known for sure).
    lead: () => connect(true),
    stepDown: () => {
      clearTimeout(stream.retryTimer);
      if (stream.source) stream.source.close();
      stream.source = null;
    },
    event: (name, ev) => {
      if (Object.hasOwn(STREAM_EVENTS, name)) STREAM_EVENTS[name](ev);
    },
    status: setStatus,
    list: () => (state.version === null ? null
      : { version: state.version, limit: state.limit, topics: state.topics, status: state.status }),
  });
  if (!shared) {
    setRole('solo');
    connect();
  }
}

// Back online, or told to start afresh.
export function reconnect() {
  if (share.role === 'follower') askSnapshot();
  else connect();
}

// resume: continue after the version this tab shows rather than start
// afresh with a snapshot. A new EventSource cannot send Last-Event-ID, so
// the version goes in the URL.
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

function scheduleReconnect() {
  clearTimeout(stream.retryTimer);
  // Exponential backoff with jitter, so a restarted server is not hit by
  // every open page at the same instant.
  const delay = stream.retryDelay * (0.8 + Math.random() * 0.4);
  stream.retryDelay = Math.min(stream.retryDelay * 2, RETRY_MAX_MS);
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

// Applies a delta in version order; a topic that others posted while we
// watch is announced.
function onDelta(ev, name) {
  const data = parseEvent(ev);
  const version = data && eventVersion(ev, data);
  if (!data || version === null) {
    resync();
    return;
  }
  const step = deltaStep(state.version, version);
  if (step === 'duplicate') return;
  if (step === 'gap') {
    resync(); // missed at least one change
    return;
  }
  const topic = data.topic;
  const fresh = name === 'topic.created' && isTopic(topic) && !views.has(topic.id);
  state.version = version;
  applyChange(name, data);
  if (fresh && views.has(topic.id)) announce(topic);
  if (name === 'topic.deleted') forgetToken(Number(data.id));
  dom.list.dataset.version = String(version);
}

// Plain-HTTP fallback for the first paint if the stream is slow to start.
export async function fallbackLoad() {
  if (state.snapshotSeen) return;
  const res = await request('GET', TOPICS_URL);
  if (state.snapshotSeen || !res.ok || !res.data || !Array.isArray(res.data.topics)) return;
  // The version is not adopted: ordering guarantees hold only within the
  // stream, and its snapshot will replace this list anyway.
  setTopics(res.data.topics);
}
