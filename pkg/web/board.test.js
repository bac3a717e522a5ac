// The page's board rules (static/board.js) against the cases Go's
// wire.ApplyEvent is tested with (pkg/wire/testdata/apply_cases.json).
// Run by `node --test` from board_test.go, so `make test` runs it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import { applyEvent, applyToBoard, deltaStep, shownTopics } from './static/board.js';

const shared = JSON.parse(readFileSync(new URL('../wire/testdata/apply_cases.json', import.meta.url), 'utf8'));

test('the cases of wire.ApplyEvent', async (t) => {
  assert.ok(shared.cases.length >= 10, 'too few cases');
  for (const c of shared.cases) {
    await t.test(c.name, () => {
      const window = structuredClone(shared.window);
      const { topics } = applyEvent(window, c.event, c.data, c.limit);
      assert.deepEqual(topics.map((x) => x.id), c.want);
      if (c.want_comments) assert.deepEqual(topics.map((x) => x.comment), c.want_comments);
      assert.deepEqual(window, shared.window, 'the window given was changed in place');
    });
  }
});

const topic = (id) => ({ id, comment: `#${id}` });
const ids = (list) => list.map((x) => x.id);

test('topics pushed off the window join the older pages once they are open', () => {
  const board = { topics: [5, 3, 1].map(topic), older: [0].map(topic), limit: 3, olderOpened: true };
  const next = applyToBoard(board, 'topic.created', { topic: topic(6) });
  assert.deepEqual(ids(next.topics), [6, 5, 3]);
  assert.deepEqual(ids(next.older), [1, 0]);
  assert.deepEqual(ids(shownTopics(next.topics, next.older)), [6, 5, 3, 1, 0]);
  const closed = applyToBoard({ ...board, older: [], olderOpened: false }, 'topic.created', { topic: topic(6) });
  assert.deepEqual(ids(closed.older), []);
});

test('updates and deletes reach the older pages', () => {
  const board = { topics: [5, 3].map(topic), older: [2, 1].map(topic), limit: 2, olderOpened: true };
  const edited = applyToBoard(board, 'topic.updated', { topic: { id: 2, comment: 'edited' } });
  assert.deepEqual(edited.older.map((x) => x.comment), ['edited', '#1']);
  const deleted = applyToBoard(board, 'topic.deleted', { id: 1 });
  assert.deepEqual(ids(deleted.older), [2]);
});

test('deltas apply in version order', () => {
  assert.equal(deltaStep(4, 5), 'apply');
  assert.equal(deltaStep(4, 4), 'duplicate');
  assert.equal(deltaStep(4, 2), 'duplicate');
  assert.equal(deltaStep(4, 6), 'gap');
  assert.equal(deltaStep(null, 1), 'gap');
});
