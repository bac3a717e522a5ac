// Changes to the list a tab shows. Every change goes through these and ends
// in render(); the rules themselves are board.js's.
import { applyToBoard, isTopic, normalizeTopics, shownTopics, uniqueTopics } from './board.js';
import { TOPICS_URL, request } from './http.js';
import { render, renderOlder } from './render.js';
import { state } from './state.js';

// Replaces the window; highlight(id) says which topics to mark as new.
export function setTopics(list, highlight) {
  state.topics = normalizeTopics(list);
  state.loaded = true;
  render(highlight);
}

// Applies a change (a stream event's name and data, or a write's answer in
// the same shape). Writes are applied as soon as the server answers, so the
// author sees them even while the stream is down; the stream's event for
// the same change is then an idempotent replacement.
export function applyChange(name, data) {
  const next = applyToBoard(state, name, data);
  state.topics = next.topics;
  state.older = next.older;
  const created = name === 'topic.created' && isTopic(data.topic);
  if (created || name === 'topic.updated') state.loaded = true;
  render((id) => created && id === data.topic.id);
}

// "Show older topics": the page before the oldest topic shown.
export async function loadOlder() {
  if (state.olderBusy || state.olderDone) return;
  const shown = shownTopics(state.topics, state.older);
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
