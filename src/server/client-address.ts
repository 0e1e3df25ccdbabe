// Who is on the other end of a request, as far as the gateway can trust it.
// Without trusted proxies (server.trusted_proxies) that is the socket's peer
// and nothing a header says: anyone can send X-Forwarded-For. Behind trusted
// proxies it is the right-most X-Forwarded-For hop that is not one of them
// (its host: a port and brackets are dropped): each proxy appends the
// address it saw, so everything left of the first untrusted hop may be the
// client's own invention.
import { BlockList, isIP } from 'node:net';

export interface TrustedProxies {
  /** Whether this address (as the socket reports it) is a proxy the operator trusts. */
  trusts(address: string | undefined): boolean;
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** A list of addresses and CIDR ranges (`10.0.0.0/8`, `::1`), checked by config's schema. */
export function createTrustedProxies(entries: readonly string[]): TrustedProxies {
  if (entries.length === 0) return { trusts: () => false };
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return {
    trusts(address) {
      if (!address) return false;
      const a = plain(address);
      const family = isIP(a);
      return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}

/** Whether `entry` is an address or CIDR range `createTrustedProxies` takes. */
export function isAddressOrRange(entry: string): boolean {
  const [address, bits, more] = entry.split('/');
  if (more !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32);
}

export interface Peer {
  /** The socket's remote address. */
  remoteAddress: string | undefined;
  /** The socket is TLS. */
  encrypted: boolean;
  header(name: string): string | undefined;
}

/** The client's address: the socket's, or behind trusted proxies the right-most untrusted X-Forwarded-For hop. */
export function clientAddress(peer: Peer, trusted: TrustedProxies): string {
  const socket = peer.remoteAddress ? plain(peer.remoteAddress) : 'unknown';
  if (!trusted.trusts(peer.remoteAddress)) return socket;
  const hops = (peer.header('x-forwarded-for') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hostOf(hops[i]!);
    if (trusted.trusts(hop)) continue;
    if (isIP(hop)) return hop;
    // Not an address (`unknown`, an RFC 7239 obfuscated `_node`, a name): a
    // trusted proxy wrote it, since every hop right of it is trusted, so it is
    // that proxy's word for its client and the key to count it by. Falling back
    // to the socket instead would put everyone behind the proxy on one sign-in
    // allowance, which three wrong keys use up for all of them. Capped: it ends
    // up in a limiter's table and in logs.
    return hop.toLowerCase().slice(0, MAX_HOP_TEXT);
  }
  // Every hop is a trusted proxy: the left-most one is the nearest thing to a client.
  return hops.length > 0 ? hostOf(hops[0]!) : socket;
}

const MAX_HOP_TEXT = 64;

/**
 * A hop's host without a port or brackets: some proxies (Azure Application
 * Gateway, IIS ARR) write `203.0.113.9:51234` or `[2001:db8::1]:443`. Keeping
 * the port would make every connection a new client, and so a new sign-in allowance.
 */
function hostOf(hop: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(hop);
  if (bracketed) return plain(bracketed[1]!);
  // One colon is a host and a port; a bare IPv6 address has two or more.
  const ported = /^([^:]*):\d*$/.exec(hop);
  return plain(ported ? ported[1]! : hop);
}

/**
 * Whether the client reached us over TLS: the socket is TLS, or a trusted
 * proxy says (X-Forwarded-Proto) that it took the request over https. An
 * untrusted peer's header is ignored: it could otherwise only make the
 * cookie less safe.
 */
export function overTls(peer: Peer, trusted: TrustedProxies): boolean {
  if (peer.encrypted) return true;
  if (!trusted.trusts(peer.remoteAddress)) return false;
  return (peer.header('x-forwarded-proto') ?? '')
    .split(',')
    .some((p) => p.trim().toLowerCase() === 'https');
}
