// The JSON API as the page uses it: one fetch per request, the API's errors as thrown Errors, ETags passed back.
// It imports nothing: every other module may use it, and it knows nothing of the page.

let apiKey = "";

/** The bearer token sent with every change (empty: none); the API key field sets it. */
export function setApiKey(key) {
  apiKey = key.trim();
}

/** One request: { status, data, etag, location }. A 304 comes back with data null; any other non-success answer throws
 *  an Error carrying the API's own message (and the field it names, and the HTTP status). */
export async function request(method, path, body, headers = {}) {
  // no-store: the browser's cache must not answer for us, nor turn our own conditional requests into 200s.
  const options = { method, cache: "no-store", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    if (apiKey) options.headers.Authorization = `Bearer ${apiKey}`;
    options.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, options);
  const etag = response.headers.get("ETag"), location = response.headers.get("Location");
  if (response.status === 304) return { status: 304, data: null, etag, location };
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok || !data || data.status !== "success") {
    const error = new Error(data && data.message ? data.message : `${method} ${path}: HTTP ${response.status}`);
    error.field = data && data.field;
    error.status = response.status;
    throw error;
  }
  return { status: response.status, data, etag, location };
}

/** The answer's JSON body alone. */
export async function api(method, path, body) {
  return (await request(method, path, body)).data;
}
