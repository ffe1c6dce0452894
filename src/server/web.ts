import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCodes } from '../errors.js';
import type { Logger } from '../util/logger.js';

/**
 * The browser pages (viewer and sender) that `serve` hosts, built into dist/web by
 * `scripts/build-web.mjs`. Their files are public code: they are served without auth, and the pages
 * present the token themselves on every API call.
 *
 * Only files found at start are served, each under one exact route, so no request path ever
 * reaches the file system (no traversal). Pages: `/` (landing), `/<name>` for each
 * `dist/web/<name>/index.html`, plus `/send` for the sender.
 */

/** Resolves to <repo>/dist/web from both src/server (tsx) and dist/server (compiled). */
export const WEB_ROOT = new URL('../../dist/web/', import.meta.url);

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
};

/** Other URLs for a page than `/<folder>`. */
// The viewer is the home page: the live sessions, pick one to watch.
const PAGE_ALIASES: Readonly<Record<string, string>> = { sender: '/send', viewer: '/' };

/** Same origin only, nothing inline (WebRTC itself is not governed by CSP). */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  readonly html: boolean;
}

/** What {@link registerWebRoutes} found. */
export interface WebRoutes {
  /** Folder the files were read from. */
  readonly root: string;
  /** URLs served (pages and assets), sorted. */
  readonly urls: readonly string[];
  /** The same, for lookups. */
  readonly publicUrls: ReadonlySet<string>;
  /** False when dist/web is missing or empty: the server runs with its API only. */
  readonly built: boolean;
}

/**
 * True for a GET or HEAD of exactly one of `routes`' page and asset URLs (a query string is
 * ignored), so that they load without auth. Everything else, the API included, needs the token
 * when auth is on.
 */
export function isPublicAsset(routes: WebRoutes, method: string, url: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const query = url.indexOf('?');
  return routes.publicUrls.has(query < 0 ? url : url.slice(0, query));
}

/** Every file under `dir`, as paths relative to it with forward slashes. */
function listFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) found.push(relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return found.sort();
}

function loadAssets(root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let files: string[];
  try {
    files = listFiles(root);
  } catch {
    return assets; // not built
  }
  for (const file of files) {
    const type = CONTENT_TYPES[extname(file).toLowerCase()];
    if (type === undefined || !/^[A-Za-z0-9._/-]+$/.test(file)) continue;
    const body = readFileSync(join(root, file));
    const asset: Asset = {
      body,
      type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      html: file.endsWith('.html'),
    };
    assets.set(`/${file}`, asset);
    if (file === 'index.html') assets.set('/', asset);
    const page = /^([a-z][a-z0-9-]*)\/index\.html$/.exec(file)?.[1];
    if (page !== undefined) {
      assets.set(`/${page}`, asset);
      const alias = PAGE_ALIASES[page];
      if (alias !== undefined) assets.set(alias, asset);
    }
  }
  return assets;
}

function serve(asset: Asset, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  void reply
    .header('ETag', asset.etag)
    // File names carry no hash: revalidate every time (cheap: 304 on an unchanged ETag).
    .header('Cache-Control', 'no-cache')
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer');
  if (asset.html) void reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.code(200).type(asset.type).send(asset.body);
}

/**
 * Registers `GET /` and the page assets, read once from `root` (default {@link WEB_ROOT}). When
 * nothing is built, `GET /` answers 404 saying how to build, the API works as usual, and `log`
 * (when given) warns once.
 */
export function registerWebRoutes(
  app: FastifyInstance,
  log?: Logger,
  root: URL | string = WEB_ROOT,
): WebRoutes {
  const dir = typeof root === 'string' ? root : fileURLToPath(root);
  const assets = loadAssets(dir);
  for (const [url, asset] of assets) {
    app.get(url, (request, reply) => serve(asset, request, reply));
  }
  const built = assets.size > 0;
  if (!built) {
    const message = `the web pages are not built (no files in ${dir}): run "npm run build" (or "npm run build:web")`;
    log?.warn({ event: 'web-not-built', root: dir }, message);
    app.get('/', (_request, reply) =>
      reply
        .code(404)
        .type('application/json')
        .send({ error: { code: ErrorCodes.HTTP_NOT_FOUND, message } }),
    );
  } else {
    log?.debug({ event: 'web-pages', root: dir, files: assets.size }, 'serving the web pages');
  }
  return { root: dir, urls: [...assets.keys()].sort(), publicUrls: new Set(assets.keys()), built };
}
