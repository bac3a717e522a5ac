// Text. Every string the page shows comes from here, in the reader's
// language. `{name}` is replaced by t(). Both languages must have the same
// keys and placeholders (pkg/web/web_test.go checks).
import { storageGet } from './storage.js';

export const LANG_KEY = 'bbs.lang';

export const MESSAGES = {
  en: {
    tagline: 'live bulletin board',
    language: 'Language',
    newTopic: 'New topic',
    placeholder: 'Say something…',
    post: 'Post',
    posting: 'Posting…',
    hintCtrl: 'Ctrl+Enter to post · Enter for a new line',
    hintMeta: '⌘+Enter to post · Enter for a new line',
    counterTitle: '{n} of {max} characters',
    topics: 'Topics',
    loading: 'Loading topics…',
    empty: 'No topics yet. Be the first to post.',
    statusLive: 'live',
    statusReconnecting: 'reconnecting…',
    statusOffline: 'offline',
    statusDelayed: 'delayed',
    showOlder: 'Show older topics',
    loadingOlder: 'Loading older topics…',
    olderFailed: 'Older topics could not be loaded. Try again.',
    statusTitleDelayed: 'Updates are arriving late (something on the way holds the stream back); the list is refreshed every few seconds meanwhile',
    statusTitleLive: 'Receiving updates live',
    statusTitleDown: 'Not receiving updates right now; the list catches up when the connection is back',
    mine: 'you',
    mineTitle: 'Written from this browser: you can edit or delete it',
    edited: 'edited',
    editedTitle: 'Edited {time}',
    edit: 'Edit',
    editLabel: 'Edit topic #{id}',
    editHint: 'Ctrl+Enter to save · Esc to cancel',
    delete: 'Delete',
    deleteLabel: 'Delete topic #{id}',
    save: 'Save',
    cancel: 'Cancel',
    confirmDelete: 'Delete this topic?',
    confirmYes: 'Delete',
    confirmNo: 'Keep',
    justNow: 'just now',
    minutesAgo: '{n} min ago',
    hoursAgo: '{n} h ago',
    dayAgo: '1 day ago',
    daysAgo: '{n} days ago',
    announceOne: 'New topic: {text}',
    announceMany: '{n} new topics',
    errEmpty: 'Write something first.',
    errTooLong: 'Your comment is {n} characters; at most {max} are allowed.',
    errNetwork: 'Network error. Check your connection and try again.',
    errHttp: 'Request failed ({status}).',
    errNoToken: 'This topic can no longer be changed from this browser.',
    errRateLimited: 'Too many posts from here. Try again in {s} s.',
    errUnavailable: 'The board cannot save right now; nothing was written. Try again shortly.',
    errOutcomeUnknown: 'The board did not confirm your post, so it may or may not have been saved. Press Post again to find out: it will not be posted twice.',
    errNotReady: 'The server is restarting. Try again in a moment.',
    errForbidden: 'This topic can only be changed from the browser that wrote it.',
    errNotFound: 'This topic no longer exists.',
    errInvalidComment: 'The comment was not accepted: {detail}',
  },
  ja: {
    tagline: 'リアルタイム掲示板',
    language: '言語',
    newTopic: '新しいトピック',
    placeholder: 'なにか書いてみましょう…',
    post: '投稿',
    posting: '投稿中…',
    hintCtrl: 'Ctrl+Enter で投稿・Enter で改行',
    hintMeta: '⌘+Enter で投稿・Enter で改行',
    counterTitle: '{max} 文字中 {n} 文字',
    topics: 'トピック',
    loading: 'トピックを読み込み中…',
    empty: 'まだトピックはありません。最初の投稿をどうぞ。',
    statusLive: 'ライブ',
    statusReconnecting: '再接続中…',
    statusOffline: 'オフライン',
    statusDelayed: '遅延中',
    showOlder: '以前のトピックを表示',
    loadingOlder: '以前のトピックを読み込み中…',
    olderFailed: '以前のトピックを読み込めませんでした。もう一度お試しください。',
    statusTitleDelayed: '更新の到着が遅れています（途中の経路がストリームを止めています）。その間、一覧は数秒ごとに更新されます',
    statusTitleLive: '更新をリアルタイムで受信しています',
    statusTitleDown: '現在は更新を受信していません。接続が戻ると一覧は自動で最新になります',
    mine: 'あなた',
    mineTitle: 'このブラウザから投稿しました。編集・削除できます',
    edited: '編集済み',
    editedTitle: '{time} に編集',
    edit: '編集',
    editLabel: 'トピック #{id} を編集',
    editHint: 'Ctrl+Enter で保存・Esc でキャンセル',
    delete: '削除',
    deleteLabel: 'トピック #{id} を削除',
    save: '保存',
    cancel: 'キャンセル',
    confirmDelete: 'このトピックを削除しますか？',
    confirmYes: '削除する',
    confirmNo: 'やめる',
    justNow: 'たった今',
    minutesAgo: '{n}分前',
    hoursAgo: '{n}時間前',
    dayAgo: '1日前',
    daysAgo: '{n}日前',
    announceOne: '新しいトピック: {text}',
    announceMany: '新しいトピックが {n} 件あります',
    errEmpty: 'まず何か書いてください。',
    errTooLong: 'コメントが {n} 文字あります。{max} 文字以内にしてください。',
    errNetwork: 'ネットワークエラーです。接続を確認して、もう一度お試しください。',
    errHttp: 'リクエストに失敗しました（{status}）。',
    errNoToken: 'このトピックは、このブラウザからはもう変更できません。',
    errRateLimited: '投稿が多すぎます。{s} 秒後にもう一度お試しください。',
    errUnavailable: '現在保存できません（何も書き込まれていません）。少し待ってからお試しください。',
    errOutcomeUnknown: '投稿が保存されたかどうか確認できませんでした。もう一度「投稿」を押すと確かめられます（二重に投稿されることはありません）。',
    errNotReady: 'サーバーが再起動中です。少し待ってからお試しください。',
    errForbidden: 'このトピックは、投稿したブラウザからのみ変更できます。',
    errNotFound: 'このトピックはもう存在しません。',
    errInvalidComment: 'コメントを受け付けられませんでした: {detail}',
  },
};
export const LANGUAGES = Object.keys(MESSAGES);

// Server error codes with a message of our own, used where the server's
// (English) message would not do: in other languages, or when it sent none.
export const ERROR_KEYS = {
  rate_limited: 'errRateLimited',
  unavailable: 'errUnavailable',
  outcome_unknown: 'errOutcomeUnknown',
  not_ready: 'errNotReady',
  draining: 'errNotReady',
  forbidden: 'errForbidden',
  unauthorized: 'errForbidden',
  not_found: 'errNotFound',
  invalid_comment: 'errInvalidComment',
};

// The language shown; main.js switches it.
export const i18n = { lang: 'en' };

export function t(key, params = {}) {
  const text = MESSAGES[i18n.lang][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// A saved choice wins; otherwise the first of the browser's preferred
// languages that we have ("ja-JP" counts as "ja"); otherwise English.
export function initialLanguage() {
  const saved = storageGet(LANG_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  const wanted = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || ''];
  for (const tag of wanted) {
    const primary = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return 'en';
}
