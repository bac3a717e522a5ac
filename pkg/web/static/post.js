// Posting.
//
// Every post carries an Idempotency-Key: the server makes at most one topic
// per key, and answers a repeat with that topic and its token. So when the
// outcome of a post is unknown (the network failed under it, a proxy timed
// out, or the server answered 503 outcome_unknown because its database did
// not confirm the write) the same post is sent again with the same key, a
// few times with backoff: it lands once, never twice. The key stays with
// the text until the post is confirmed, so pressing Post again after a
// failure can never make a duplicate either; new text gets a new key.
import { isTopic } from './board.js';
import { commentProblem, dom, renderCounter, setText } from './dom.js';
import { TOPICS_URL, pause, request } from './http.js';
import { t } from './i18n.js';
import { applyChange } from './list.js';
import { state } from './state.js';
import { randomKey, rememberToken } from './storage.js';

const POST_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
const POST_RETRY_MAX_WAIT_MS = 10 * 1000;
const pendingPost = { text: null, key: null };

// The key for this text: the pending one if the text is the same post (as
// the server will store it), a new one otherwise.
function postKey(text) {
  const normalized = text.replace(/\r\n/g, '\n').trim();
  if (pendingPost.text !== normalized) {
    pendingPost.text = normalized;
    pendingPost.key = randomKey();
  }
  return pendingPost.key;
}

// Whether the post may have reached the database although we have no
// answer saying so: then only a retry with the same key can tell.
function outcomeUnknown(res) {
  return res.status === 0 || res.status === 502 || res.status === 504 ||
    (res.status === 503 && res.code === 'outcome_unknown');
}

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

export async function submitPost(ev) {
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
  if (isTopic(topic)) applyChange('topic.created', { topic });
}
