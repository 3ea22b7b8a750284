// api.js: the REST client of the web UI (docs/api.md). Every call carries
// the bearer token kept in sessionStorage for this browser tab; a 401 ends
// the session and sends the person back to the login page with the reason.
const TOKEN_KEY = 'vessel.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};

export function onUnauthorized(fn) { unauthorizedHandler = fn; }
export function getToken() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

// method, path under /api/v1/, optional JSON body. Resolves to the parsed
// JSON reply; rejects with ApiError carrying the API's code and sentence.
export async function api(method, path, body, opts = {}) {
  const token = opts.token ?? getToken();
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(`/api/v1/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'vesseld cannot be reached; check that it is running');
  }
  let j = null;
  const type = r.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) {
    try { j = await r.json(); } catch (e) { j = null; }
  }
  if (!r.ok) {
    const code = j?.error?.code || `http_${r.status}`;
    const msg = j?.error?.message || `vesseld answered HTTP ${r.status} to ${method} ${path}`;
    const err = new ApiError(r.status, code, msg);
    if (r.status === 401 && !opts.noLogout) unauthorizedHandler(err);
    throw err;
  }
  return j;
}

// Raw bytes (console history) with the token.
export async function apiBytes(path) {
  const r = await fetch(`/api/v1/${path}`, { headers: { Authorization: `Bearer ${getToken()}` } });
  if (r.status === 401) unauthorizedHandler(new ApiError(401, 'unauthorized', 'token refused'));
  if (!r.ok) throw new ApiError(r.status, `http_${r.status}`, `HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// ws:// URL of an API WebSocket; browsers cannot set headers on a
// WebSocket, so the token goes in the query (docs/api.md).
export function wsUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/v1/${path}?token=${encodeURIComponent(getToken())}`;
}
