import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Longest token accepted, in the token file and in `Authorization` headers. */
export const MAX_TOKEN_LENGTH = 4096;
const BEARER = new RegExp(`^Bearer ([\\x21-\\x7e]{1,${MAX_TOKEN_LENGTH}})$`, 'i');

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
      // verify() reads at most this many: a longer token could never authenticate.
      if (token.length > MAX_TOKEN_LENGTH)
        throw new RangeError(
          `auth tokens must be at most ${MAX_TOKEN_LENGTH} characters (one has ${token.length})`,
        );
      if (!/^[\x21-\x7e]+$/.test(token))
        throw new RangeError('auth tokens must be printable ASCII without spaces');
    }
    this.#digests = cleaned.map(digest);
  }

  /** The id (digest prefix) of the token in an `Authorization` header value, or undefined. */
  verify(authorization: string | undefined): string | undefined {
    const match = BEARER.exec(authorization ?? '');
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

/**
 * Reads tokens from a file: one per line; blank lines and lines starting with # are ignored.
 * Throws a RangeError naming the line of a token longer than {@link MAX_TOKEN_LENGTH}, which
 * could never authenticate.
 */
export function readTokenFile(path: string): string[] {
  const tokens: string[] = [];
  for (const [index, raw] of readFileSync(path, 'utf8').split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    if (line.length > MAX_TOKEN_LENGTH)
      throw new RangeError(
        `line ${index + 1}: a token of ${line.length} characters; at most ${MAX_TOKEN_LENGTH} can authenticate`,
      );
    tokens.push(line);
  }
  return tokens;
}
