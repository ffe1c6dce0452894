/**
 * The seed workload with HTTPS signaling (a throwaway self-signed certificate for 127.0.0.1, made
 * with openssl). TLS covers signaling only; the DataChannel is DTLS either way.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POINTS_PER_FRAME, runRated } from './scenarios.js';
import type { RateResult } from './scenarios.js';

export const OPENSSL_ARGS = [
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  '<dir>/key.pem',
  '-out',
  '<dir>/cert.pem',
  '-days',
  '1',
  '-subj',
  '/CN=127.0.0.1',
  '-addext',
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
];

export const tlsServeExtra = (dir: string): string[] => [
  '--tls-cert',
  join(dir, 'cert.pem'),
  '--tls-key',
  join(dir, 'key.pem'),
];

export async function runTls(seconds: number): Promise<RateResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pointstream-bench-tls-'));
  try {
    execFileSync(
      'openssl',
      OPENSSL_ARGS.map((a) => a.replace('<dir>', dir)),
      { stdio: 'ignore', timeout: 30_000 },
    );
    const certPath = join(dir, 'cert.pem');
    return await runRated('tls', {
      points: POINTS_PER_FRAME,
      seconds,
      serve: { extra: tlsServeExtra(dir) },
      send: { extra: ['--ca', certPath] },
      ca: readFileSync(certPath),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
