/**
 * Writes a tiny MaxMind DB (MMDB format 2.0, IPv4, 24-bit records) for tests, so that the
 * offline IP database path (SESSION_GEOIP_DB) is exercised with the real reader (`maxmind`)
 * on data the test makes, not a downloaded database. Records are `country.iso_code` and
 * `autonomous_system_number`, as GeoLite2-Country and GeoLite2-ASN hold them.
 */
import { writeFileSync } from 'node:fs';

type Value = string | number | Value[] | { [key: string]: Value };

function uint(type: number, value: number | bigint): Buffer {
  let hex = BigInt(value).toString(16);
  if (hex === '0') hex = '';
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.concat([control(type, hex.length / 2), Buffer.from(hex, 'hex')]);
}

function control(type: number, size: number): Buffer {
  if (size >= 29) throw new Error('this writer keeps every value under 29 bytes');
  return type <= 7 ? Buffer.from([(type << 5) | size]) : Buffer.from([size, type - 7]);
}

function encode(value: Value): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(2, bytes.length), bytes]);
  }
  if (typeof value === 'number') return uint(6, value);
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map(encode)]);
  const entries = Object.entries(value);
  return Buffer.concat([control(7, entries.length), ...entries.flatMap(([k, v]) => [encode(k), encode(v)])]);
}

export interface MmdbEntry {
  /** An IPv4 prefix, e.g. `203.0.113.0/24`. */
  network: string;
  country?: string;
  asn?: number;
}

export function writeMmdb(path: string, entries: readonly MmdbEntry[]): void {
  type Record = { node: number } | { data: number } | null;
  const nodes: Array<[Record, Record]> = [[null, null]];
  const data: Buffer[] = [];
  let dataSize = 0;
  for (const entry of entries) {
    const [address, length] = entry.network.split('/');
    const bits = address.split('.').map(Number).reduce((n, octet) => (n << 8) | octet, 0) >>> 0;
    const record: { [key: string]: Value } = {};
    if (entry.country) record.country = { iso_code: entry.country };
    if (entry.asn !== undefined) record.autonomous_system_number = entry.asn;
    const encoded = encode(record);
    const offset = dataSize;
    data.push(encoded);
    dataSize += encoded.length;
    let node = 0;
    for (let i = 0; i < Number(length); i++) {
      const bit = (bits >>> (31 - i)) & 1;
      if (i === Number(length) - 1) {
        nodes[node][bit] = { data: offset };
        break;
      }
      const next = nodes[node][bit];
      if (next && 'node' in next) node = next.node;
      else {
        nodes.push([null, null]);
        nodes[node][bit] = { node: nodes.length - 1 };
        node = nodes.length - 1;
      }
    }
  }
  const count = nodes.length;
  const tree = Buffer.alloc(count * 6);
  const valueOf = (r: Record) => (r === null ? count : 'node' in r ? r.node : count + 16 + r.data);
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(valueOf(left), i * 6, 3);
    tree.writeUIntBE(valueOf(right), i * 6 + 3, 3);
  });
  const metadata = Buffer.concat([
    control(7, 9),
    encode('node_count'), uint(6, count),
    encode('record_size'), uint(5, 24),
    encode('ip_version'), uint(5, 4),
    encode('database_type'), encode('Cloakroom-Test'),
    encode('languages'), encode([]),
    encode('binary_format_major_version'), uint(5, 2),
    encode('binary_format_minor_version'), uint(5, 0),
    encode('build_epoch'), uint(9, Math.floor(Date.now() / 1000)),
    encode('description'), encode({ en: 'test networks' }),
  ]);
  writeFileSync(path, Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com'), metadata]));
}
