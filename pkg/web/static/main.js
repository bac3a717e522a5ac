// bbs: the browser client of the real-time bulletin board. This module
// wires the page together; what each part does is in its own module:
//   board.js   the list's rules, no DOM (tested with node --test)
//   stream.js  the live stream, delayed state, backoff
//   share.js   one stream for all of a browser's tabs
//   list.js    changes to the list; render.js draws it
//   post.js    posting; items.js editing and deleting
//   i18n.js    texts in English and Japanese
import { dom, isMac, isSendKey, renderCounter, setText } from './dom.js';
import { LANGUAGES, LANG_KEY, i18n, initialLanguage, t } from './i18n.js';
import { askDelete, startEdit } from './items.js';
import { loadOlder } from './list.js';
import { submitPost } from './post.js';
import { labelView, onItemAction, refreshTimes, renderEmpty, renderOlder, updateActions, views } from './render.js';
import { state } from './state.js';
import { TOKENS_KEY, readTokens, storageGet, storageSet } from './storage.js';
import { fallbackLoad, reconnect, setStatus, startStream } from './stream.js';

// If the stream has not produced a snapshot by then, fetch the list once
// over plain HTTP so the page is not blank (e.g. a proxy buffering SSE).
const FALLBACK_FETCH_MS = 1500;

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

function init() {
  document.documentElement.classList.add('js');
  setLanguage(initialLanguage(), false);
  onItemAction(startEdit, askDelete);

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
  window.addEventListener('online', reconnect);

  startStream();
  setTimeout(fallbackLoad, FALLBACK_FETCH_MS);
}

init();
