// Requests to the API, and failures turned into messages in the reader's
// language.
import { ERROR_KEYS, i18n, t } from './i18n.js';

export const TOPICS_URL = '/api/topics';

export const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function retryAfterSeconds(header) {
  if (!header) return 0;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function sentence(s) {
  const text = s.trim();
  if (!text) return text;
  const first = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?。]$/.test(first) ? first : `${first}.`;
}

// Turns a failed answer into a message function. English readers get the
// server's own words; others get ours for the errors we know, and the
// server's words (better than nothing) for the rest.
function failureMessage(res, data) {
  const err = data && typeof data === 'object' ? data.error : null;
  const code = err && typeof err.code === 'string' ? err.code : '';
  const detail = err && typeof err.message === 'string' ? err.message : '';
  const key = ERROR_KEYS[code] || (res.status === 429 ? 'errRateLimited' : '');
  const wait = Math.max(1, retryAfterSeconds(res.headers.get('Retry-After')));
  const status = `${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
  return () => {
    if (detail && i18n.lang === 'en') return sentence(detail);
    if (key) return t(key, { s: wait, detail: detail || status });
    return detail ? sentence(detail) : t('errHttp', { status });
  };
}

// Resolves (never rejects) to { ok, status, code, data, message, retryAfter },
// where code is the server's error code ('' if none), message a message
// function for failures and retryAfter the Retry-After in seconds (0 if none).
export async function request(method, url, body, token, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    return { ok: false, status: 0, code: '', data: null, message: () => t('errNetwork'), retryAfter: 0 };
  }
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null; // empty or non-JSON body (e.g. from a proxy)
    }
  }
  if (res.ok) return { ok: true, status: res.status, code: '', data, message: null, retryAfter: 0 };
  const err = data && typeof data === 'object' ? data.error : null;
  return {
    ok: false,
    status: res.status,
    code: err && typeof err.code === 'string' ? err.code : '',
    data,
    message: failureMessage(res, data),
    retryAfter: retryAfterSeconds(res.headers.get('Retry-After')),
  };
}
