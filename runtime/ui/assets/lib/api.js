// The node's JSON API (/api/v1, docs/wire-format.md "JSON API"). The
// bearer token lives in this tab's sessionStorage and travels in the
// Authorization header, never in a cookie: another site cannot make this
// browser steer the cluster.

const KEY = 'troupe.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function jobPath(id) {
  return 'jobs/' + id.split('/').map(encodeURIComponent).join('/');
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = authHeaders();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`/api/v1/${path}`, {
    method, headers, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let doc = null;
  try { doc = JSON.parse(text); } catch { /* not JSON: reported below */ }
  if (!res.ok) {
    const e = (doc && doc.error) || { code: `http_${res.status}`, message: text || res.statusText };
    const err = new ApiError(res.status, e.code, e.message);
    if (res.status === 401) window.dispatchEvent(new CustomEvent('troupe:unauthorized'));
    throw err;
  }
  return doc;
}

/// A steering request (POST); resolves to the result, or throws ApiError.
export function steer(path, body) {
  return api(path, { method: 'POST', body: body || {} });
}
