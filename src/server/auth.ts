import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with `timingSafeEqual`,
 * against every allowed token each time, so neither length nor position leaks through timing.
 * Tokens never appear in logs: a token is named by the first 8 hex digits of its digest.
 */
export class TokenAuth {
  readonly #digests: readonly Buffer[];

  constructor(tokens: readonly string[]) {
    const cleaned = tokens.map((token) => token.trim()).filter((token) => token.length > 0);
    if (cleaned.length === 0) throw new RangeError('auth needs at least one non-empty token');
    for (const token of cleaned) {
      if (token.length < 16) throw new RangeError('auth tokens must be at least 16 characters');
      if (!/^[\x21-\x7e]+$/.test(token))
        throw new RangeError('auth tokens must be printable ASCII without spaces');
    }
    this.#digests = cleaned.map(digest);
  }

  /** The id (digest prefix) of the token in an `Authorization` header value, or undefined. */
  verify(authorization: string | undefined): string | undefined {
    const match = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(authorization ?? '');
    const presented = digest(match?.[1] ?? '');
    let found: Buffer | undefined;
    for (const allowed of this.#digests) {
      if (timingSafeEqual(allowed, presented) && match) found = allowed;
    }
    return found?.toString('hex').slice(0, 8);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Reads tokens from a file: one per line; blank lines and lines starting with # are ignored. */
export function readTokenFile(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
