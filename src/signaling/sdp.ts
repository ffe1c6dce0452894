import { ErrorCodes, PointstreamError } from '../errors.js';

/**
 * Pure SDP helpers: only what signaling needs (validating offers, moving candidates between the
 * SDP and trickle fragments). Not a general SDP parser.
 */

/** Largest SDP accepted by default; real data-channel offers are 0.5-3 KB. */
export const DEFAULT_MAX_SDP_BYTES = 32 * 1024;

export interface OfferSummary {
  /** Media sections by kind, e.g. `{ application: 1 }`. */
  readonly mediaKinds: ReadonlyMap<string, number>;
  readonly dataChannelSections: number;
  /** `a=max-message-size` of the data-channel section, when present. */
  readonly maxMessageSize: number | undefined;
  readonly candidates: number;
}

function sdpError(
  code: typeof ErrorCodes.SDP_INVALID | typeof ErrorCodes.SDP_NO_DATACHANNEL,
  message: string,
) {
  return new PointstreamError(code, message);
}

export function splitLines(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((line) => line.length > 0);
}

/**
 * Checks that `sdp` is a plausible WebRTC offer with exactly one data-channel section and no audio
 * or video. Throws PS_ERR_SDP_INVALID or PS_ERR_SDP_NO_DATACHANNEL.
 */
export function inspectOffer(sdp: string): OfferSummary {
  if (sdp.length === 0) throw sdpError(ErrorCodes.SDP_INVALID, 'SDP is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(sdp)) {
    throw sdpError(ErrorCodes.SDP_INVALID, 'SDP contains control characters');
  }
  const lines = splitLines(sdp);
  if (lines[0] !== 'v=0') throw sdpError(ErrorCodes.SDP_INVALID, "SDP does not start with 'v=0'");
  const mediaKinds = new Map<string, number>();
  let dataChannelSections = 0;
  let maxMessageSize: number | undefined;
  let candidates = 0;
  let inDataSection = false;
  for (const line of lines) {
    if (!/^[a-z]=/.test(line))
      throw sdpError(
        ErrorCodes.SDP_INVALID,
        `malformed SDP line ${JSON.stringify(line.slice(0, 40))}`,
      );
    if (line.startsWith('m=')) {
      const [kind = '', , proto = ''] = line.slice(2).split(' ');
      mediaKinds.set(kind, (mediaKinds.get(kind) ?? 0) + 1);
      inDataSection = kind === 'application' && proto.includes('SCTP');
      if (inDataSection) dataChannelSections++;
    } else if (line.startsWith('a=max-message-size:') && inDataSection) {
      const value = Number(line.slice('a=max-message-size:'.length));
      if (Number.isSafeInteger(value) && value >= 0) maxMessageSize = value;
    } else if (line.startsWith('a=candidate:')) {
      candidates++;
    }
  }
  const audioVideo = [...mediaKinds.keys()].filter((kind) => kind !== 'application');
  if (audioVideo.length > 0) {
    throw sdpError(
      ErrorCodes.SDP_NO_DATACHANNEL,
      `offer has ${audioVideo.join(' and ')} sections; only one data channel is accepted`,
    );
  }
  if (dataChannelSections !== 1) {
    throw sdpError(
      ErrorCodes.SDP_NO_DATACHANNEL,
      `offer has ${dataChannelSections} data-channel sections; exactly one is required`,
    );
  }
  return { mediaKinds, dataChannelSections, maxMessageSize, candidates };
}

/** `sdp` without its `a=candidate` and `a=end-of-candidates` lines. */
export function withoutCandidates(sdp: string): string {
  return (
    splitLines(sdp)
      .filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates')
      .join('\r\n') + '\r\n'
  );
}

export interface IceCandidate {
  /** The candidate attribute value, without the `a=` prefix: `candidate:1 1 UDP ...`. */
  readonly candidate: string;
  readonly mid: string;
}

/** The ICE candidates in `sdp`, each with the mid of its media section. */
export function candidatesOf(sdp: string): IceCandidate[] {
  const found: IceCandidate[] = [];
  let mid = '';
  for (const line of splitLines(sdp)) {
    if (line.startsWith('m=')) mid = '';
    else if (line.startsWith('a=mid:')) mid = line.slice(6);
    else if (line.startsWith('a=candidate:')) found.push({ candidate: line.slice(2), mid });
  }
  return found;
}

/** The `a=max-message-size` of an SDP, or undefined (then RFC 8841 says 65536). */
export function maxMessageSizeOf(sdp: string): number | undefined {
  const match = /^a=max-message-size:(\d+)\s*$/m.exec(sdp);
  return match ? Number(match[1]) : undefined;
}

/** A trickle-ICE SDP fragment (RFC 8840) carrying `candidates`, as WHIP's PATCH sends it. */
export function toSdpFragment(candidates: readonly IceCandidate[]): string {
  const lines: string[] = [];
  let mid: string | undefined;
  for (const { candidate, mid: candidateMid } of candidates) {
    if (candidateMid !== mid) {
      mid = candidateMid;
      lines.push('m=application 9 UDP/DTLS/SCTP webrtc-datachannel', `a=mid:${mid}`);
    }
    lines.push(`a=${candidate}`);
  }
  lines.push('a=end-of-candidates');
  return lines.join('\r\n') + '\r\n';
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Whether `address` is an IP literal (v4 dotted quad, or v6 hex groups, optionally with an embedded v4 tail). */
export function isIpLiteral(address: string): boolean {
  if (IPV4.test(address)) return true;
  if (!address.includes(':') || address.length > 45) return false;
  const tail = address.slice(address.lastIndexOf(':') + 1);
  const v6 =
    tail.includes('.') && IPV4.test(tail) ? address.slice(0, -tail.length) + '0:0' : address;
  if (!/^[0-9a-fA-F:]+$/.test(v6) || (v6.match(/::/g)?.length ?? 0) > 1) return false;
  const groups = v6.split(':').filter((group) => group.length > 0);
  if (groups.some((group) => group.length > 4)) return false;
  return v6.includes('::') ? groups.length < 8 : groups.length === 8;
}

/**
 * How a candidate names its address: `ip` (kept), `mdns` (a browser's `<uuid>.local` name: dropped,
 * the server learns the address from the browser's own checks) or `host` (any other name: refused,
 * because libdatachannel resolves it with a blocking lookup on a thread of its own, one per candidate).
 */
export function candidateAddressKind(candidate: string): 'ip' | 'mdns' | 'host' {
  const address = candidate.split(' ')[4] ?? '';
  if (isIpLiteral(address)) return 'ip';
  return /^[0-9a-zA-Z-]{1,63}\.local\.?$/.test(address) ? 'mdns' : 'host';
}

function candidateRefused(line: string): PointstreamError {
  return new PointstreamError(
    ErrorCodes.CANDIDATE_REFUSED,
    `candidate ${JSON.stringify(line.slice(0, 80))} names a host, not an IP address; send IP candidates only`,
  );
}

/**
 * `sdp` with its mDNS (`.local`) candidates left out: libdatachannel would start a lookup thread
 * for each. Throws PS_ERR_CANDIDATE_REFUSED for a candidate naming any other host or for
 * more than `maxCandidates` candidates.
 */
export function withIpCandidatesOnly(sdp: string, maxCandidates = 64): string {
  let count = 0;
  let dropped = 0;
  const lines = splitLines(sdp).filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    if (++count > maxCandidates)
      throw new PointstreamError(
        ErrorCodes.CANDIDATE_REFUSED,
        `offer has more than ${maxCandidates} candidates`,
      );
    const kind = candidateAddressKind(line.slice(2));
    if (kind === 'host') throw candidateRefused(line);
    if (kind === 'mdns') dropped++;
    return kind === 'ip';
  });
  return dropped === 0 ? sdp : lines.join('\r\n') + '\r\n';
}

/**
 * The candidates of a trickle-ICE SDP fragment, mDNS (`.local`) ones left out. Throws
 * PS_ERR_SDP_INVALID on anything odd, PS_ERR_CANDIDATE_REFUSED on a candidate naming a host.
 */
export function parseSdpFragment(fragment: string, maxCandidates = 64): IceCandidate[] {
  const candidates: IceCandidate[] = [];
  let mid = '';
  for (const line of splitLines(fragment)) {
    if (line.startsWith('a=mid:')) mid = line.slice(6);
    else if (line.startsWith('a=candidate:')) {
      if (!/^candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ \S+/.test(line.slice(2))) {
        throw sdpError(
          ErrorCodes.SDP_INVALID,
          `malformed candidate ${JSON.stringify(line.slice(0, 60))}`,
        );
      }
      const kind = candidateAddressKind(line.slice(2));
      if (kind === 'host') throw candidateRefused(line);
      if (kind === 'ip') candidates.push({ candidate: line.slice(2), mid });
      if (candidates.length > maxCandidates)
        throw sdpError(ErrorCodes.SDP_INVALID, 'too many candidates');
    } else if (!/^(m=|a=ice-ufrag:|a=ice-pwd:|a=end-of-candidates|a=group:)/.test(line)) {
      throw sdpError(
        ErrorCodes.SDP_INVALID,
        `unexpected line in SDP fragment ${JSON.stringify(line.slice(0, 40))}`,
      );
    }
  }
  return candidates;
}
