/**
 * Structured logs, one JSON object per line on stderr. Callers pass named fields,
 * never a whole object from a request or a token response, so that no token, code,
 * cookie value or secret can slip into a log line. Fields whose names say they carry
 * a secret are masked as a second line of defence.
 */
type Fields = Record<string, string | number | boolean | undefined | null>;
type Level = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Words of a field name that say its value is a credential. */
const SECRET_WORDS = new Set(['token', 'secret', 'password', 'cookie', 'authorization', 'verifier', 'assertion', 'jwt', 'bearer', 'credential', 'credentials']);
/**
 * Last words that say the field describes a credential without holding it
 * (`cookieBytes`, `tokenCount`, `secretIndex`): those are what an operator needs.
 */
const DESCRIPTIVE_WORDS = new Set(['bytes', 'count', 'length', 'size', 'chunks', 'index', 'kind', 'type', 'names', 'age', 'outcome', 'reason', 'status']);

/** `refreshToken`, `refresh_token`, `Set-Cookie` → their lower-case words. */
function wordsOf(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

function isSecretField(name: string): boolean {
  const words = wordsOf(name);
  // An OAuth authorization `code` travels under that bare name; `errorCode` is a code of ours.
  if (words.length === 1 && words[0] === 'code') return true;
  if (DESCRIPTIVE_WORDS.has(words.at(-1) ?? '')) return false;
  return words.some((w) => SECRET_WORDS.has(w));
}

/**
 * Events that describe the state of the whole process, not of a request: written once.
 * A refused configuration does not change until a restart, and repeating it on every
 * request would flood the log.
 */
const ONCE_PER_PROCESS = new Set(['configuration_invalid']);
const written = new Set<string>();

function threshold(): number {
  const wanted = (process.env.LOG_LEVEL ?? 'info') as Level;
  return LEVELS[wanted] ?? LEVELS.info;
}

function write(level: Level, event: string, fields: Fields = {}): void {
  if (LEVELS[level] < threshold()) return;
  if (ONCE_PER_PROCESS.has(event)) {
    if (written.has(event)) return;
    written.add(event);
  }
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, event };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line[key] = isSecretField(key) ? '[redacted]' : value;
  }
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

export const log = {
  debug: (event: string, fields?: Fields) => write('debug', event, fields),
  info: (event: string, fields?: Fields) => write('info', event, fields),
  warn: (event: string, fields?: Fields) => write('warn', event, fields),
  error: (event: string, fields?: Fields) => write('error', event, fields),
  /**
   * A security event: something an alert should fire on (a spent refresh token presented
   * again, a replayed logout token, a session changing hands). Written at `warn` with
   * `security: true`, so that one filter finds them all. Fields follow the same rules:
   * names, counts, hashes — never a token, cookie or raw path.
   */
  security: (event: string, fields?: Fields) => write('warn', event, { ...fields, security: true }),
};
