import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { LOOPBACK_MTU, isLoopbackAddress } from './peer.js';
import type { RtcOptions } from './peer.js';

/**
 * WebRTC settings for a client whose signaling server is on this machine, or nothing.
 *
 * A DataChannel's cost is per packet, so libdatachannel's default MTU (1280, safe on any network)
 * halves what a sender on this machine reaches (measured: 44 against 85-112 MB/s, at twice the
 * client CPU). When the signaling host is one of this machine's own addresses, the media path can
 * only be local too, provided ICE cannot pick another: so bind to that address (one host
 * candidate, the path is the loopback device whatever the server binds) and use
 * {@link LOOPBACK_MTU}. A server anywhere else keeps the safe defaults (all interfaces, 1280).
 */
export async function localRouteFor(signalingUrl: string): Promise<RtcOptions | undefined> {
  const address = await signalingAddress(signalingUrl);
  if (address === undefined || !isLocalAddress(address)) return undefined;
  return { bindAddress: address, mtu: LOOPBACK_MTU };
}

/**
 * The address the signaling host resolves to. A name with several local addresses (`localhost`:
 * 127.0.0.1 and ::1) takes IPv4 loopback, which a server bound to all interfaces or to 127.0.0.1
 * both reach; a name that also resolves elsewhere is not local.
 */
async function signalingAddress(signalingUrl: string): Promise<string | undefined> {
  let host: string;
  try {
    host = new URL(signalingUrl).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return undefined;
  }
  // Connecting to the unspecified address reaches this machine (Linux, macOS): its loopback.
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  if (isIP(host) !== 0) return host;
  try {
    const addresses = (await lookup(host, { all: true })).map(({ address }) => address);
    if (addresses.length === 0 || !addresses.every(isLocalAddress)) return undefined;
    return addresses.find((address) => /^127\./.test(address)) ?? addresses[0];
  } catch {
    return undefined; // signaling will report the unresolvable name itself
  }
}

/** Loopback, or an address of one of this machine's interfaces. */
export function isLocalAddress(address: string): boolean {
  if (isLoopbackAddress(address)) return true;
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      // A link-local IPv6 address needs its zone to be bound; leave it to the defaults.
      if (entry.address === address && !(entry.family === 'IPv6' && entry.scopeid !== 0))
        return true;
    }
  }
  return false;
}
