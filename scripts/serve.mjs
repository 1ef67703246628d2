#!/usr/bin/env node
// A small static file server for the demo and the end-to-end tests: serves the repository root on
// 127.0.0.1 (WebGPU needs a secure context; localhost is one), with the MIME types WASM needs.
//   node scripts/serve.mjs [--port 8080]
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ts": "text/plain; charset=utf-8",
};

// The file a request path names, or null when it must not be served: outside the repository (a
// `..` segment, or a sibling directory whose name merely starts with the root's), an encoded
// separator (%2F, %5C) or NUL, or escapes that do not decode.
export function resolveInRoot(pathname, base = root) {
  if (/%(2f|5c|00)/i.test(pathname)) return null;
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.split(/[/\\]/).includes("..")) return null;
  const path = normalize(join(base, decoded));
  return path === base || path.startsWith(base.endsWith(sep) ? base : base + sep) ? path : null;
}

// `isolated`: cross-origin isolation headers (COOP/COEP), so that pages get SharedArrayBuffer (the
// benchmark pages' multi-threaded wllama peer needs it; everything served is same-origin).
export function serve(port = 8080, { isolated = false } = {}) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    let path = resolveInRoot(url.pathname);
    if (path === null) {
      res.writeHead(403, { "content-type": "text/plain" }).end("forbidden");
      return;
    }
    try {
      let info = await stat(path);
      if (info.isDirectory()) {
        path = join(path, "index.html");
        info = await stat(path);
      }
      // An ETag, so that the package's weight cache can revalidate with a conditional request.
      const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { etag }).end();
        return;
      }
      const body = await readFile(path);
      res.writeHead(200, {
        "content-type": types[extname(path)] ?? "application/octet-stream",
        "content-length": body.length,
        "cache-control": "no-store",
        etag,
        ...(isolated ? {
          "cross-origin-opener-policy": "same-origin",
          "cross-origin-embedder-policy": "require-corp",
        } : {}),
      });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${url.pathname}`);
    }
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => ok(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--port");
  const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
  await serve(port);
  console.log(`demo: http://127.0.0.1:${port}/www/  (Ctrl-C to stop)`);
}
