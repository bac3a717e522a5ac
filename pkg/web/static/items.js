// Editing and deleting the topics written from this browser (their tokens
// are in storage.js).
import { isTopic } from './board.js';
import { button, commentProblem, el, isSendKey, renderCounter, setText } from './dom.js';
import { TOPICS_URL, request } from './http.js';
import { t } from './i18n.js';
import { applyChange } from './list.js';
import { labelView, stopConfirm, updateActions, views } from './render.js';
import { forgetToken, tokenFor } from './storage.js';

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

export function startEdit(view) {
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
    if (isTopic(topic)) applyChange('topic.updated', { topic });
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
export function askDelete(view) {
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
    applyChange('topic.deleted', { id });
  } else {
    // On 404 the token is gone and the buttons disappear. The item itself
    // stays until the stream says it was deleted: a 404 may also mean the
    // token no longer matches a topic that still exists.
    stopConfirm(view, false);
    showItemError(view, res.message);
  }
}
