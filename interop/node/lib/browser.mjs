// The "browser" of the tests: plain fetch that never follows redirects, with a tiny cookie jar.
// It keeps what a browser would keep (name, value, attributes) per host, drops cookies that are
// removed (Max-Age=0 or an Expires in the past), and sends back the ones whose path matches.

export class Browser {
  /** host -> Map(name -> { value, attributes }) */
  #jar = new Map();

  /** The cookies stored for `host`, as `{ name: { value, attributes } }`. */
  cookies(host) {
    return Object.fromEntries(this.#jar.get(host) ?? []);
  }

  #cookieHeader(url) {
    const cookies = this.#jar.get(url.hostname);
    if (!cookies) return null;
    const pairs = [];
    for (const [name, c] of cookies) {
      const path = c.attributes.path ?? '/';
      if (url.pathname === path || url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`)) {
        pairs.push(`${name}=${c.value}`);
      }
    }
    return pairs.length ? pairs.join('; ') : null;
  }

  #store(url, setCookie) {
    const [pair, ...rest] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const attributes = {};
    for (const part of rest) {
      const i = part.indexOf('=');
      const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
      attributes[key] = i < 0 ? true : part.slice(i + 1).trim();
    }
    if (!this.#jar.has(url.hostname)) this.#jar.set(url.hostname, new Map());
    const cookies = this.#jar.get(url.hostname);
    const removed =
      (attributes['max-age'] !== undefined && Number(attributes['max-age']) <= 0) ||
      (attributes.expires !== undefined && Date.parse(attributes.expires) <= Date.now());
    if (removed) cookies.delete(name);
    else cookies.set(name, { value, attributes });
  }

  /** GET `url` (a string or URL) without following redirects; resolves to
   * `{ status, location, headers, body }` (`location` absolute, `body` as text). */
  async get(url) {
    const u = new URL(url);
    const headers = { accept: 'text/html' };
    const cookie = this.#cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(u, { redirect: 'manual', headers });
    for (const sc of res.headers.getSetCookie()) this.#store(u, sc);
    const body = await res.text();
    const location = res.headers.get('location');
    return {
      status: res.status,
      location: location === null ? null : new URL(location, u).href,
      headers: res.headers,
      body,
    };
  }
}
