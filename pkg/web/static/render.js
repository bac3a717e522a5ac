// Drawing the list: a keyed reconcile of <li> elements, so that items being
// edited keep their textarea (and focus) when other topics change; the
// times, which update themselves; announcements for screen readers.
import { shownTopics } from './board.js';
import { button, dom, el, renderCounter, setText } from './dom.js';
import { t } from './i18n.js';
import { state } from './state.js';
import { readTokens, tokenFor } from './storage.js';
import { fullTime, relativeTime, wasEdited } from './time.js';

const HIGHLIGHT_MS = 2500;
// Announcements are gathered for this long so a burst of posts is read out
// as "3 new topics", not as three interruptions.
const ANNOUNCE_MS = 1000;
const ANNOUNCE_CHARS = 140;

// id -> view: { li, topic, comment, badge, time, edited, actions, editBtn,
//               deleteBtn, error, errorMsg, editing, confirming, busy }
export const views = new Map();

// What the Edit and Delete buttons of an item do (items.js).
const itemHandlers = { edit: () => {}, del: () => {} };

export function onItemAction(edit, del) {
  itemHandlers.edit = edit;
  itemHandlers.del = del;
}

export function render(shouldHighlight = () => false) {
  const list = shownTopics(state.topics, state.older);
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

export function renderEmpty() {
  const show = !state.loaded || state.topics.length === 0;
  dom.empty.hidden = !show;
  dom.empty.classList.toggle('loading', !state.loaded);
  if (show) setText(dom.empty, state.loaded ? t('empty') : t('loading'));
}

export function renderOlder() {
  const b = dom.olderButton;
  if (!b) return;
  // Only a full window can have older topics below it.
  b.hidden = !state.loaded || state.olderDone || state.limit === null || state.topics.length < state.limit;
  b.disabled = state.olderBusy;
  setText(b, state.olderBusy ? t('loadingOlder') : t('showOlder'));
  setText(dom.olderError, state.olderFailed ? t('olderFailed') : '');
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
  editBtn.addEventListener('click', () => itemHandlers.edit(view));
  deleteBtn.addEventListener('click', () => itemHandlers.del(view));
  labelView(view);
  return view;
}

// Sets every translated label of a view; runs again on a language switch.
export function labelView(view) {
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

export function updateActions(view, tokens = readTokens()) {
  const mine = tokenFor(view.topic.id, tokens) !== null;
  view.li.classList.toggle('mine', mine);
  view.badge.hidden = !mine;
  view.actions.hidden = !mine || view.editing !== null || view.confirming !== null;
  view.editBtn.disabled = view.busy;
  view.deleteBtn.disabled = view.busy;
  if (!mine && view.confirming) stopConfirm(view, false);
}

export function stopConfirm(view, restoreFocus) {
  if (!view.confirming) return;
  view.confirming.box.remove();
  view.confirming = null;
  updateActions(view);
  if (restoreFocus && !view.actions.hidden) view.deleteBtn.focus();
}

// Labels change at known instants ("just now" becomes "1 min ago" 60 s
// after posting), so the clock sleeps until the next one.
const clock = { timer: 0 };

export function refreshTimes() {
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

// Topics others post while we watch, read out by screen readers.
const announcements = { pending: [], timer: 0 };

export function announce(topic) {
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
