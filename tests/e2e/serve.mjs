// scripts/serve.mjs serves the repository and nothing outside it: path checks on the function, then
// real requests against a running server (a sibling directory whose name starts with the root's, `..`
// in every spelling, encoded separators), and that an ordinary file still comes back.
//   node tests/e2e/serve.mjs
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveInRoot, serve } from "../../scripts/serve.mjs";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

// The function, against a root of our choosing.
assert.equal(resolveInRoot("/www/index.html", "/srv/repo"), "/srv/repo/www/index.html");
assert.equal(resolveInRoot("/", "/srv/repo"), "/srv/repo/");
for (const bad of ["/../repo-sibling/x", "/a/../../etc/passwd", "/%2e%2e/etc/passwd", "/..%2fetc",
  "/..%5cetc", "/a%00b", "/%E0%A4%A", "/..\\\\etc"]) {
  assert.equal(resolveInRoot(bad, "/srv/repo"), null, bad);
}

// A real server, and a sibling of the repository named like it (`<root>-sibling/secret.txt`).
const sibling = `${root}-sibling`;
await mkdir(sibling, { recursive: true });
await writeFile(join(sibling, "secret.txt"), "must not be served");
const server = await serve(0);
const port = server.address().port;
// Raw paths, as a client that does not normalise them sends them.
const get = (path) => new Promise((ok, fail) => {
  request({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => ok({ status: res.statusCode, body }));
  }).on("error", fail).end();
});
try {
  const name = root.split("/").pop();
  for (const path of [`/../${name}-sibling/secret.txt`, `/%2e%2e/${name}-sibling/secret.txt`,
    `/..%2f${name}-sibling%2fsecret.txt`, "/../../etc/passwd"]) {
    const r = await get(path);
    assert.notEqual(r.status, 200, `${path} was served`);
    assert.ok(!r.body.includes("must not be served"), path);
  }
  const ok = await get("/package.json");
  assert.equal(ok.status, 200);
  assert.match(ok.body, /"name": "webgpu-infer"/);
  console.log("serve.mjs: only the repository is served");
} finally {
  server.close();
  await rm(sibling, { recursive: true, force: true });
}
