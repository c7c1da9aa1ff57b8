import { readFileSync } from 'node:fs';
import { Reader, type Response } from 'maxmind';
import { isIP } from 'node:net';

/**
 * The offline IP database of stolen-session detection (SESSION_GEOIP_DB): an MMDB file
 * such as GeoLite2-ASN, GeoLite2-Country, or one that holds both (DB-IP, IPinfo's free
 * databases, or a merge), read with MaxMind's reader (`maxmind`, MIT). Read once per path
 * and process, synchronously, when the configuration is loaded: an unreadable file stops
 * the start (lib/config/load.ts) rather than silently turning the signal off. Looked up
 * in memory; nothing leaves the machine.
 */
type IpRecord = {
  autonomous_system_number?: unknown;
  country?: { iso_code?: unknown };
  registered_country?: { iso_code?: unknown };
};

const databases = new Map<string, Reader<Response>>();

/** Throws when the file cannot be read or is not an MMDB database. */
export function ipDatabase(path: string): Reader<Response> {
  let reader = databases.get(path);
  if (!reader) {
    reader = new Reader<Response>(readFileSync(path));
    databases.set(path, reader);
  }
  return reader;
}

/**
 * "AS64500 NL": the autonomous system and the country of an address, whichever the
 * database holds; undefined when it holds neither (a private address, a gap).
 */
export function networkOwner(path: string, address: string): string | undefined {
  if (!isIP(address)) return undefined;
  let record: IpRecord | null;
  try {
    // The fields read below are common to the ASN, Country and City layouts.
    record = ipDatabase(path).get(address) as IpRecord | null;
  } catch {
    // An IPv6 address in an IPv4-only database, for one.
    return undefined;
  }
  if (!record) return undefined;
  const asn = record.autonomous_system_number;
  const country = record.country?.iso_code ?? record.registered_country?.iso_code;
  const parts: string[] = [];
  if (typeof asn === 'number' && Number.isInteger(asn) && asn > 0) parts.push(`AS${asn}`);
  if (typeof country === 'string' && /^[A-Z]{2}$/.test(country)) parts.push(country);
  return parts.length > 0 ? parts.join(' ') : undefined;
}
