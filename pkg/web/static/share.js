// One stream per browser, shared by its tabs.
//
// Browsers allow six HTTP/1.1 connections per origin for all tabs of a
// profile together, so a stream per tab would leave no connection to post
// with from the sixth tab on, and a seventh tab would never load. Instead
// the tabs elect a leader with the Web Locks API: the tab that holds the
// lock SHARE_NAME (for as long as it lives) holds the EventSource and
// relays every event (name, data, id) to the other tabs over a
// BroadcastChannel. The followers apply relayed events with the same rules
// as the leader (stream.js). A follower that joins, or sees a gap, asks the
// leader, who answers with its current list as a snapshot. When the leader
// tab closes, the lock passes to a waiting tab at once; it opens the stream
// resuming after the last version it applied, so no tab misses or repeats
// an event.
//
// A leader tab can also stop without closing: frozen by the browser (to
// save power) or stuck. It then still holds the lock, and nothing tells
// the others. So the leader beats on the channel every BEAT_MS, and a
// follower that hears nothing from it for twice that takes the lock from
// it (steal) and streams in its place, resuming after its last version; the
// old leader, once it runs again, finds its lock gone and follows.
//
// Web Locks need a secure context (HTTPS, or localhost); on a plain-HTTP
// page the tabs elect the leader with a lease in localStorage instead, which
// a frozen leader stops renewing. Without BroadcastChannel or storage every
// tab holds a stream of its own.
import { randomKey, storageGet, storageSet } from './storage.js';

const SHARE_NAME = 'bbs-stream';
const ASK_MIN_MS = 300;
const LEASE_KEY = 'bbs.streamLeader';
const LEASE_MS = 5000;
const LEASE_TICK_MS = 1000;
const BEAT_MS = 1500;
const SILENT_MS = 2 * BEAT_MS;
// While neither this tab nor the leader is visible, a follower waits this
// long instead: Chromium runs the timers of a tab hidden for five minutes
// once a minute, so a hidden leader may beat that seldom and still be fine.
const HIDDEN_SILENT_MS = 75 * 1000;

export const share = {
  channel: null,
  // 'leader' holds the stream for every tab, 'follower' applies what the
  // leader relays, 'solo' holds a stream of its own (no sharing).
  role: 'solo',
  mode: '', // 'locks' or 'lease'
  tab: '',
  claiming: false,
  askTimer: 0,
  lastAsk: 0,
  heard: 0, // when a follower last heard from a leader
  leaderHidden: false, // the leader's page was hidden at its last beat
  queued: false, // a lock request waits in the queue
  stealing: false,
};

// What the stream does for the election (stream.js): lead() opens the
// stream, stepDown() closes it, event(name, ev) applies a relayed event,
// status(s) shows a relayed state, list() is the list to answer an ask with.
const hooks = {};

export function setRole(role) {
  share.role = role;
  document.documentElement.dataset.streamRole = role;
}

// Sends a message to the other tabs, when this tab leads them.
export function relay(msg) {
  if (share.channel && share.role === 'leader') share.channel.postMessage(msg);
}

// Joins the election; false if this browser cannot share a stream.
export function startSharing(h) {
  Object.assign(hooks, h);
  const locks = navigator.locks && typeof navigator.locks.request === 'function';
  const lease = !locks && storageSet(LEASE_KEY + '.probe', '1');
  if (typeof BroadcastChannel !== 'function' || (!locks && !lease)) return false;
  share.tab = randomKey();
  share.channel = new BroadcastChannel(SHARE_NAME);
  share.channel.addEventListener('message', (ev) => onShared(ev.data));
  share.heard = Date.now();
  setRole('follower');
  hooks.status('reconnecting');
  if (locks) {
    share.mode = 'locks';
    requestLock();
    setInterval(beat, BEAT_MS);
    setInterval(watchLeader, BEAT_MS / 3);
  } else {
    // The lease: the leader renews it every LEASE_TICK_MS and gives it up
    // when its page goes; a follower claims it once it has run out. Two
    // tabs may both lead for a moment: every tab ignores events it already
    // has (by version), and the one that finds the other's lease steps down.
    share.mode = 'lease';
    setInterval(leaseTick, LEASE_TICK_MS);
    window.addEventListener('pagehide', () => {
      if (share.role !== 'leader') return;
      const l = readLease();
      if (l && l.tab === share.tab) storageSet(LEASE_KEY, '');
      share.channel.postMessage({ type: 'resign' });
    });
    leaseTick();
  }
  askSnapshot();
  return true;
}

// Waits in the lock's queue; the lock is held for the life of the tab.
function requestLock() {
  if (share.queued) return;
  share.queued = true;
  navigator.locks.request(SHARE_NAME, () => {
    share.queued = false;
    return lead();
  }).catch((err) => {
    share.queued = false;
    lockLost(err);
  });
}

function lead() {
  if (share.role !== 'leader') becomeLeader();
  return new Promise(() => {});
}

function lockLost(err) {
  if (err && err.name === 'AbortError') {
    // Another tab stole the lock, taking this one for frozen: it streams
    // now, and this tab follows and queues for the lock again.
    if (share.role === 'leader') stepDown();
    requestLock();
  } else if (share.role === 'follower') {
    becomeLeader(); // the lock cannot be had (e.g. storage blocked): stream on our own
  }
}

function becomeLeader() {
  clearTimeout(share.askTimer);
  share.askTimer = 0;
  setRole('leader');
  document.documentElement.dataset.leaderSince = String(Date.now()); // read by the browser tests
  share.channel.postMessage({ type: 'leader' });
  hooks.lead();
}

function stepDown() {
  hooks.stepDown();
  setRole('follower');
  share.heard = Date.now();
  askSnapshot();
}

function beat() {
  if (share.role === 'leader') share.channel.postMessage({ type: 'beat', hidden: document.hidden });
}

function silentFor() {
  const visible = !document.hidden || !share.leaderHidden;
  return visible ? SILENT_MS : HIDDEN_SILENT_MS;
}

// A follower that hears nothing from the leader takes over, after a random
// moment: of several followers noticing together, one takes the lock and
// the others hear it lead before they try.
function watchLeader() {
  if (share.role !== 'follower' || share.stealing || Date.now() - share.heard < silentFor()) return;
  share.stealing = true;
  setTimeout(() => {
    share.stealing = false;
    if (share.role !== 'follower' || Date.now() - share.heard < silentFor()) return;
    navigator.locks.request(SHARE_NAME, { steal: true }, lead).catch(lockLost);
  }, Math.random() * 500);
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

// Asks the leader for its list, at most every ASK_MIN_MS.
export function askSnapshot() {
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
  if (msg.type !== 'ask') share.heard = Date.now(); // every other message is a leader's
  switch (msg.type) {
    case 'event':
      if (msg.to && msg.to !== share.tab) return; // another tab's answer
      hooks.event(msg.name, { data: msg.data, lastEventId: msg.id });
      break;
    case 'status':
      hooks.status(msg.status);
      break;
    case 'beat':
      share.leaderHidden = msg.hidden === true;
      break;
    case 'leader':
      // A new leader: if we still wait for a list, ask it.
      if (hooks.list() === null) askSnapshot();
      break;
    case 'resign':
      // The leader's page is going (lease election only): take over now.
      if (share.mode === 'lease') setTimeout(claimLease, Math.random() * 100);
      break;
    default:
  }
}

// The leader's answer to a tab that asked: its list as a snapshot. Until
// the leader has one itself, the stream's snapshot reaches every tab.
function answerSnapshot(to) {
  const list = hooks.list();
  if (list === null || typeof to !== 'string') return;
  const data = JSON.stringify({ version: list.version, limit: list.limit, topics: list.topics });
  share.channel.postMessage({ type: 'event', name: 'snapshot', to, data, id: String(list.version) });
  share.channel.postMessage({ type: 'status', status: list.status });
}
