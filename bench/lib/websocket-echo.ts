/**
 * A WebSocket echo round trip through the broker against the same echo called directly
 * (issue 9): the demo API's echo (demo/api.ts) with a token got at the provider, and the
 * same echo through `npm start`'s front door on a `"websocket": true` route with a
 * session cookie. One message in flight at a time (a round trip is what a chat or a
 * live view feels), 64-byte text messages, the two alternated in blocks so that drift
 * of a loaded machine hits both alike.
 */
import { WebSocket } from 'ws';

export interface RoundTrips {
  medianUs: number;
  p99Us: number;
  meanUs: number;
}

export interface EchoFigures {
  messages: number;
  direct: RoundTrips;
  broker: RoundTrips;
  /** Broker median over direct median. */
  medianRatio: number;
  /** Broker median minus direct median, in microseconds: what the relay adds per round trip. */
  addedMedianUs: number;
}

const PAYLOAD = 'x'.repeat(64);
const WARM_UP = 100;
const BLOCKS = 4;

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.once('unexpected-response', (_request, response) => reject(new Error(`${url}: the upgrade was refused with ${response.statusCode}`)));
    ws.once('error', reject);
    // The echo's first message is its greeting (who called); round trips start after it.
    ws.once('message', () => resolve(ws));
  });
}

function roundTrip(ws: WebSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    ws.once('message', () => resolve(Number(process.hrtime.bigint() - started) / 1_000));
    ws.send(PAYLOAD, (error) => error && reject(error));
  });
}

async function sample(ws: WebSocket, count: number, into: number[]): Promise<void> {
  for (let i = 0; i < count; i++) into.push(await roundTrip(ws));
}

function summary(samples: number[]): RoundTrips {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { medianUs: at(0.5), p99Us: at(0.99), meanUs: samples.reduce((a, b) => a + b, 0) / samples.length };
}

export async function websocketEcho(options: {
  /** `ws://` URL of the API's echo, and the bearer token it accepts. */
  directUrl: string;
  token: string;
  /** `ws://` URL of the same echo through the broker, the broker's origin and a session cookie. */
  brokerUrl: string;
  brokerOrigin: string;
  cookie: string;
  messages: number;
}): Promise<EchoFigures> {
  const direct = await open(options.directUrl, { authorization: `Bearer ${options.token}` });
  const broker = await open(options.brokerUrl, { origin: options.brokerOrigin, cookie: options.cookie });
  try {
    await sample(direct, WARM_UP, []);
    await sample(broker, WARM_UP, []);
    const directSamples: number[] = [];
    const brokerSamples: number[] = [];
    const perBlock = Math.max(1, Math.floor(options.messages / BLOCKS));
    for (let block = 0; block < BLOCKS; block++) {
      await sample(direct, perBlock, directSamples);
      await sample(broker, perBlock, brokerSamples);
    }
    const d = summary(directSamples);
    const b = summary(brokerSamples);
    return { messages: perBlock * BLOCKS, direct: d, broker: b, medianRatio: b.medianUs / d.medianUs, addedMedianUs: b.medianUs - d.medianUs };
  } finally {
    direct.terminate();
    broker.terminate();
  }
}
