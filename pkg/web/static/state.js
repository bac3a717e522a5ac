// What the page holds: one object, changed by list.js, stream.js and
// post.js, drawn by render.js.

export const state = {
  topics: [], // the live window, newest first (descending id)
  version: null, // version of the last snapshot or delta applied
  limit: null, // window size announced by the last snapshot
  loaded: false, // some list (snapshot or fallback fetch) has been shown
  snapshotSeen: false,
  // Pages older than the live window, loaded with "show older" (GET
  // /api/topics?before=): newest first, below the window (board.js).
  older: [],
  olderOpened: false, // some older page was loaded
  olderDone: false, // the oldest topic is shown
  olderBusy: false,
  olderFailed: false,
  posting: false,
  // The message under the form, as a function so that it can be shown
  // again in another language; null when there is none.
  postError: null,
  status: 'offline',
};
