// Weight caching for webgpu-infer: model files kept in the browser's Cache Storage, so a page loads a
// model from the network once. A cached file is reused only when it passes its checks:
//   - its entry was completed: the byte count written next to it (a small "meta" entry, stored only
//     after the whole body went into the cache) equals the response's Content-Length when it had one;
//   - when the server can be asked, it still has the same file: a conditional request with the
//     cached ETag (or Last-Modified) answered 304. A 200 means the file changed: the new response is
//     used (and cached) instead. When the network is down, a complete entry is reused as it is.
// The loaders then check the file's own header (safetensors, GGUF) against its length as they stream
// it; `loadCached` (index.js) deletes an entry that fails there and loads again from the network.
// Cached bodies go through the same streaming path as network ones: chunks into mapped GPU buffers,
// nothing into WASM memory.

export const CACHE_NAME = "webgpu-infer-v1";
// The meta entries live in a cache of their own under the same URLs (Cache Storage ignores a URL's
// #fragment, so a suffix there would overwrite the file itself).
const META_CACHE = `${CACHE_NAME}-meta`;

const available = () => typeof caches !== "undefined";

/** Counters of what the cache did in this page (or worker): hits, misses, revalidations, writes. */
export const cacheStats = { hits: 0, misses: 0, revalidated: 0, stale: 0, stored: 0, storeFailed: 0 };

async function readMeta(url) {
  const m = await (await caches.open(META_CACHE)).match(url);
  if (!m) return null;
  try { return await m.json(); } catch { return null; }
}

function complete(meta, response) {
  if (!meta || typeof meta.bytes !== "number") return false;
  const len = response.headers.get("content-length");
  return len === null || Number(len) === meta.bytes;
}

// Writes `response` (a clone of what the loader streams) into the cache, counting its bytes; the
// meta entry goes in only once the body is fully stored.
async function store(cache, url, response) {
  let bytes = 0;
  const counter = new TransformStream({
    transform(chunk, ctl) { bytes += chunk.byteLength; ctl.enqueue(chunk); },
  });
  const body = response.body.pipeThrough(counter);
  const headers = new Headers(response.headers);
  try {
    await cache.put(url, new Response(body, { status: 200, headers }));
    const len = response.headers.get("content-length");
    if (len !== null && Number(len) !== bytes) throw new Error("truncated");
    const meta = { bytes, etag: response.headers.get("etag"), lastModified: response.headers.get("last-modified"), storedAt: Date.now() };
    const metas = await caches.open(META_CACHE);
    await metas.put(url, new Response(JSON.stringify(meta), { headers: { "content-type": "application/json" } }));
    cacheStats.stored++;
  } catch {
    cacheStats.storeFailed++;
    await drop(url);
  }
}

async function drop(url) {
  await (await caches.open(CACHE_NAME)).delete(url);
  await (await caches.open(META_CACHE)).delete(url);
}

/**
 * A `fetch` that answers GET requests from Cache Storage when the cached file is complete and still
 * current, and stores what it fetches. Same signature as `fetch`. Falls back to plain `fetch` where
 * Cache Storage is missing (http pages other than localhost, some private modes). A response served
 * from the cache has `fromCache === true`.
 */
export async function cachedFetch(input, init = {}) {
  const url = new URL(typeof input === "string" ? input : input.url, globalThis.location?.href).href;
  if (!available() || (init.method && init.method !== "GET") || !/^https?:/.test(url)) {
    return fetch(input, init);
  }
  const cache = await caches.open(CACHE_NAME);
  const hit = await cache.match(url);
  const meta = hit ? await readMeta(url) : null;
  if (hit && complete(meta, hit)) {
    const validator = {};
    if (meta.etag) validator["if-none-match"] = meta.etag;
    else if (meta.lastModified) validator["if-modified-since"] = meta.lastModified;
    if (Object.keys(validator).length === 0) { cacheStats.hits++; return served(hit); }
    let fresh;
    try {
      fresh = await fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...validator }, cache: "no-store" });
    } catch (e) {
      if (init.signal?.aborted) throw e;
      cacheStats.hits++;            // offline: a complete entry is reused as it is
      return served(hit);
    }
    if (fresh.status === 304) { cacheStats.hits++; cacheStats.revalidated++; return served(hit); }
    cacheStats.stale++;
    if (!fresh.ok) return fresh;    // the loader reports the HTTP status
    return keep(cache, url, fresh);
  }
  if (hit) await drop(url);
  cacheStats.misses++;
  const res = await fetch(input, init);
  return res.ok ? keep(cache, url, res) : res;
}

// Marks a response answered from the cache (`response.fromCache === true`), so a caller can tell its
// own hits apart from those of loads running beside it.
function served(res) {
  Object.defineProperty(res, "fromCache", { value: true });
  return res;
}

function keep(cache, url, res) {
  if (!res.body) return res;
  void store(cache, url, res.clone());
  return res;
}

/** Deletes `url`'s cached copy (e.g. after its header failed the loader's checks). */
export async function evict(url) {
  if (!available()) return;
  await drop(new URL(url, globalThis.location?.href).href);
}

/** Deletes every model file this library cached. Resolves to the number of files removed. */
export async function clearCache() {
  if (!available()) return 0;
  const files = (await (await caches.open(CACHE_NAME)).keys()).length;
  await caches.delete(CACHE_NAME);
  await caches.delete(META_CACHE);
  return files;
}

/** The URLs in the cache with their sizes in bytes: `[{ url, bytes, storedAt }]`. */
export async function cachedFiles() {
  if (!available()) return [];
  const cache = await caches.open(CACHE_NAME);
  const out = [];
  for (const req of await cache.keys()) {
    const meta = await readMeta(req.url);
    if (meta) out.push({ url: req.url, bytes: meta.bytes, storedAt: meta.storedAt });
  }
  return out;
}
