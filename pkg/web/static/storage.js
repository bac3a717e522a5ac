// localStorage, which may be disabled (some private modes) or full, and the
// tokens of topics written from this browser ("bbs.tokens", a JSON object
// id -> token). Tokens are read-modify-written on every change so that
// several open tabs do not overwrite each other's entries; without storage
// they live in memory for this page.

export const TOKENS_KEY = 'bbs.tokens';

export function storageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function storageSet(key, value) {
  try {
    localStorage.setItem(key, value);
    return true;
  } catch {
    return false;
  }
}

const memoryTokens = {};

export function readTokens() {
  let stored = {};
  try {
    const parsed = JSON.parse(storageGet(TOKENS_KEY) || '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) stored = parsed;
  } catch {
    // Unreadable or corrupt: behave as if empty.
  }
  return Object.assign(stored, memoryTokens);
}

export function tokenFor(id, tokens = readTokens()) {
  const t = tokens[String(id)];
  return typeof t === 'string' && t !== '' ? t : null;
}

export function rememberToken(id, token) {
  const tokens = readTokens();
  tokens[String(id)] = token;
  if (!storageSet(TOKENS_KEY, JSON.stringify(tokens))) memoryTokens[String(id)] = token;
}

export function forgetToken(id) {
  delete memoryTokens[String(id)];
  const tokens = readTokens();
  if (String(id) in tokens) {
    delete tokens[String(id)];
    storageSet(TOKENS_KEY, JSON.stringify(tokens));
  }
}

// 128 random bits, hex: an Idempotency-Key within the server's 16..128
// characters of [A-Za-z0-9_-], and a tab's name. getRandomValues works on
// plain-HTTP pages too, where crypto.randomUUID does not exist.
export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
