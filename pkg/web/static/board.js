// The board's rules, with no DOM: how events change the list a tab holds.
// They are the server's (Go's wire.ApplyEvent in pkg/wire/apply.go), and
// both are tested against the same cases, pkg/wire/testdata/apply_cases.json
// (pkg/web/board.test.js here), so that a tab applying the snapshot and the
// events in order holds exactly the server's first page.

export function isTopic(t) {
  return t !== null && typeof t === 'object' &&
    Number.isInteger(t.id) && typeof t.comment === 'string';
}

const byIdDesc = (a, b) => b.id - a.id;

// Newest first, anything that is not a topic left out.
export function normalizeTopics(list) {
  return list.filter(isTopic).sort(byIdDesc);
}

export function uniqueTopics(list) {
  const seen = new Set();
  return normalizeTopics(list).filter((t) => !seen.has(t.id) && seen.add(t.id));
}

function insertById(list, topic) {
  const at = list.findIndex((t) => t.id < topic.id);
  list.splice(at < 0 ? list.length : at, 0, topic);
}

// Applies one delta event (name, and its parsed data) to a window of topics,
// newest first, cut to limit (0 or null: no cut). Returns the new window and
// the topics the cut dropped; the window given is not changed. A created
// topic goes in by id; an update replaces; a delete removes, then puts the
// event's fill (the topic that slides onto the first page, as the server
// read it at this version) in by id, unless it is there already or the
// window is full.
export function applyEvent(topics, name, data, limit) {
  const out = topics.slice();
  let dropped = [];
  const topic = data && data.topic;
  switch (name) {
    case 'topic.created': {
      if (!isTopic(topic)) break;
      const i = out.findIndex((t) => t.id === topic.id);
      if (i >= 0) out[i] = topic;
      else insertById(out, topic);
      if (limit && out.length > limit) dropped = out.splice(limit);
      break;
    }
    case 'topic.updated': {
      const i = isTopic(topic) ? out.findIndex((t) => t.id === topic.id) : -1;
      if (i >= 0) out[i] = topic;
      break;
    }
    case 'topic.deleted': {
      const id = Number(data && data.id);
      const fill = data && data.fill;
      const kept = out.filter((t) => t.id !== id);
      const room = !limit || kept.length < limit;
      if (isTopic(fill) && fill.id !== id && room && !kept.some((t) => t.id === fill.id)) insertById(kept, fill);
      return { topics: kept, dropped };
    }
    default:
  }
  return { topics: out, dropped };
}

// Applies a delta to everything a tab shows: the live window (topics) and
// the older pages loaded below it (older). Once older pages are open, the
// topics new ones push off the window join them, so the list stays whole;
// an update or a delete reaches them too.
export function applyToBoard(board, name, data) {
  const { topics, dropped } = applyEvent(board.topics, name, data, board.limit);
  let older = board.older;
  if (name === 'topic.created' && board.olderOpened && dropped.length) {
    older = uniqueTopics(dropped.concat(older));
  } else if (name === 'topic.updated' && isTopic(data.topic) && !topics.some((t) => t.id === data.topic.id)) {
    older = older.map((t) => (t.id === data.topic.id ? data.topic : t));
  } else if (name === 'topic.deleted') {
    older = older.filter((t) => t.id !== Number(data.id));
  }
  return { topics, older };
}

// What a delta at version v means to a tab at version current (null: none
// yet): 'apply' the next one, ignore a 'duplicate', or a 'gap' (at least one
// change missed: get the list afresh).
export function deltaStep(current, v) {
  if (current !== null && v <= current) return 'duplicate';
  return current !== null && v === current + 1 ? 'apply' : 'gap';
}

// What the list shows: the live window, then the older pages below it.
export function shownTopics(topics, older) {
  if (older.length === 0) return topics;
  const last = topics.length ? topics[topics.length - 1].id : Infinity;
  return topics.concat(older.filter((t) => t.id < last));
}
