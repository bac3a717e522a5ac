// Times as readers want them: "5 min ago", and the full date on hover, in
// the page's language.
import { i18n, t } from './i18n.js';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// Returns the label for a time and how long it stays right, so the clock
// can sleep until the next change rather than poll.
export function relativeTime(iso, now) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return { text: '', validFor: Infinity };
  // A negative age (our clock behind the server's) also reads "just now".
  const age = Math.max(0, now - at);
  const until = (unit) => unit - (age % unit);
  if (age < MINUTE) return { text: t('justNow'), validFor: MINUTE - age };
  if (age < HOUR) return { text: t('minutesAgo', { n: Math.floor(age / MINUTE) }), validFor: until(MINUTE) };
  if (age < DAY) return { text: t('hoursAgo', { n: Math.floor(age / HOUR) }), validFor: until(HOUR) };
  const days = Math.floor(age / DAY);
  if (days < 7) return { text: days === 1 ? t('dayAgo') : t('daysAgo', { n: days }), validFor: until(DAY) };
  return { text: formatDate(at, { dateStyle: 'medium' }), validFor: Infinity };
}

// Formatters are costly to build and a snapshot formats every topic.
const dateFormats = new Map();

function formatDate(at, options) {
  const key = `${i18n.lang} ${JSON.stringify(options)}`;
  if (!dateFormats.has(key)) dateFormats.set(key, new Intl.DateTimeFormat(i18n.lang, options));
  return dateFormats.get(key).format(at);
}

export function fullTime(iso) {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? '' : formatDate(at, { dateStyle: 'medium', timeStyle: 'short' });
}

// Compare instants rather than strings so "Z" vs "+00:00" or differing
// fractional digits do not mark every topic as edited.
export function wasEdited(topic) {
  if (!topic.updated_at || topic.updated_at === topic.created_at) return false;
  const c = Date.parse(topic.created_at);
  const u = Date.parse(topic.updated_at);
  return Number.isNaN(c) || Number.isNaN(u) ? true : u !== c;
}
