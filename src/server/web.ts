import type { FastifyInstance } from 'fastify';

/**
 * The browser pages (viewer and sender) that `serve` hosts. Their files are public code: they are
 * served without auth, and the pages present the token themselves on every API call.
 */
export function isPublicAsset(url: string): boolean {
  void url;
  return false; // TODO(issue 7): the page and its bundles
}

/** Registers `GET /` and the page assets. */
export function registerWebRoutes(app: FastifyInstance): void {
  void app; // TODO(issue 7)
}
