// The page's elements, and small helpers to build and change them. User
// text is only ever put into the page with textContent, never parsed as
// HTML; the page runs under a strict CSP (no inline scripts or styles).
import { t } from './i18n.js';

export const MAX_CODE_POINTS = 2000;
// The counter turns amber from here, before the limit bites.
const NEAR_LIMIT = 1800;

const byId = (id) => document.getElementById(id);

export const dom = {
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

// Counts Unicode code points (what the server limits), not UTF-16 units.
export const codePoints = (s) => [...s].length;

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function button(className) {
  const b = el('button', className);
  b.type = 'button';
  return b;
}

// Writes only real changes, so screen readers and the layout are not
// disturbed by text that is the same as before.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function renderCounter(node, text) {
  const n = codePoints(text.trim());
  setText(node, `${n} / ${MAX_CODE_POINTS}`);
  node.title = t('counterTitle', { n, max: MAX_CODE_POINTS });
  node.classList.toggle('near', n > NEAR_LIMIT && n <= MAX_CODE_POINTS);
  node.classList.toggle('over', n > MAX_CODE_POINTS);
}

// Explains why a comment would be refused, as a message function, or null
// when it is fine. The server has the last word; this saves a round trip.
export function commentProblem(text) {
  const n = codePoints(text.trim());
  if (n === 0) return () => t('errEmpty');
  if (n > MAX_CODE_POINTS) return () => t('errTooLong', { n, max: MAX_CODE_POINTS });
  return null;
}

export const isMac = /mac|iphone|ipad/i.test(
  (navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '');

// Ctrl+Enter (Cmd+Enter on a Mac) sends; plain Enter is a new line, which is
// what a multi-line box should do. Never while an input method is composing:
// there Enter confirms the conversion (Japanese, Chinese, Korean input).
export function isSendKey(ev) {
  return ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ev.isComposing && ev.keyCode !== 229;
}
