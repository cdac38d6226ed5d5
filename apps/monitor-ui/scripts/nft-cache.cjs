// Preload for `next build`: keeps @vercel/nft's per-file analysis of node_modules in
// .next/cache between builds, so output file tracing ("Collecting build traces",
// span node-file-trace-build) does not re-parse all of next's server files on every build.
//
// Only nft's analysis step is cached (the parsed imports/requires/assets of one file, a pure
// function of that file's content and path); nft still walks the graph, resolves and applies
// Next's ignores on every build, so the traced file lists are exactly what an uncached build
// produces. The cache is keyed by the lockfile, the Next.js version, the Node version and the
// app path, and holds node_modules files only: app and .next files are analysed afresh.
//
// Use: node --require ./scripts/nft-cache.cjs node_modules/next/dist/bin/next build
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const dir = process.cwd();
const CACHE_FILE = path.join(dir, ".next", "cache", "nft-analysis.json");
const NM = `${path.sep}node_modules${path.sep}`;

function cacheKey() {
  const h = crypto.createHash("sha256");
  for (const f of ["package-lock.json", "node_modules/next/package.json"]) {
    try {
      h.update(fs.readFileSync(path.join(dir, f)));
    } catch {
      h.update(`missing:${f}`);
    }
  }
  h.update(`${process.version}\0${dir}`);
  return h.digest("hex");
}

function load(key) {
  try {
    const data = JSON.parse(fs.readFileSync(CACHE_FILE, "utf8"));
    if (data.key !== key) return new Map();
    return new Map(
      data.entries.map(([file, a]) => [
        file,
        { isESM: a.isESM, deps: new Set(a.deps), imports: new Set(a.imports), assets: new Set(a.assets) },
      ]),
    );
  } catch {
    return new Map();
  }
}

function save(key, analysisCache) {
  const entries = [];
  for (const [file, a] of analysisCache) {
    if (!file.includes(NM) || !a || typeof a.isESM !== "boolean") continue;
    entries.push([file, { isESM: a.isESM, deps: [...a.deps], imports: [...a.imports], assets: [...a.assets] }]);
  }
  const tmp = `${CACHE_FILE}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(CACHE_FILE), { recursive: true });
  fs.writeFileSync(tmp, JSON.stringify({ key, entries }));
  fs.renameSync(tmp, CACHE_FILE); // atomic: a build worker writing at once cannot tear it
}

// Same promise for the same path within one trace: nft's own fs cache is bypassed when Next
// passes its readFile/readlink/stat callbacks (vercel/next.js#96157).
function memo(fn) {
  if (typeof fn !== "function") return fn;
  const m = new Map();
  return (p) => {
    let r = m.get(p);
    if (r === undefined) {
      r = fn(p);
      m.set(p, r);
    }
    return r;
  };
}

let nftPath = null;
try {
  nftPath = require.resolve("next/dist/compiled/@vercel/nft", { paths: [dir] });
} catch {}
const nft = nftPath && require(nftPath);
if (nft && typeof nft.nodeFileTrace === "function" && !process.env.NFT_CACHE_DISABLE) {
  const original = nft.nodeFileTrace;
  const key = cacheKey();
  // The bundle's exports are getters: hand later require() calls a copy with our wrapper.
  const patched = { ...nft };
  require.cache[nftPath].exports = patched;
  patched.nodeFileTrace = async function cachedNodeFileTrace(files, opts = {}) {
    const seeded = load(key);
    const seededSize = seeded.size;
    const cache = { ...(opts.cache || {}), analysisCache: seeded };
    const result = await original(files, {
      ...opts,
      cache,
      readFile: memo(opts.readFile),
      readlink: memo(opts.readlink),
      stat: memo(opts.stat),
    });
    // nft filled the seeded map in place: it now holds the old and the new analyses
    let nodeModulesEntries = 0;
    for (const file of cache.analysisCache.keys()) if (file.includes(NM)) nodeModulesEntries++;
    if (nodeModulesEntries > seededSize) {
      try {
        save(key, cache.analysisCache);
      } catch (err) {
        console.warn(`nft-cache: not saved: ${err.message}`);
      }
    }
    return result;
  };
}
