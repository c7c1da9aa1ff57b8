/**
 * Structured logs with pino: one JSON object per line on stderr (`{"level", "time",
 * "requestId"?, …fields, "event"}`), at the level LOG_LEVEL names (`debug`, `info`,
 * `warn`, `error`; default `info`). Lines are written to `process.stderr` itself, not
 * through a pino transport: transports run in worker threads, which Next.js's bundles
 * do not survive (STACK.md); `npm run demo` prettifies them in its own process.
 *
 * Three lines of defence keep a token, code, cookie value or secret out of the log:
 *   1. callers pass named scalar fields, never a whole object from a request or a token
 *      response (the `Fields` type refuses objects);
 *   2. fields whose names say they carry a secret are masked (`isSecretField`);
 *   3. pino's path redaction (`REDACTED_PATHS`) masks the usual credential names again,
 *      at the top level and one level down, should an object ever slip through a cast.
 *
 * Inside a request (lib/http/request-context.ts) every line carries that request's
 * `requestId`, from a child logger made once per request when it first logs: call sites
 * need not thread a logger through.
 */
import pino, { type Logger } from 'pino';
import { currentRequestContext } from './http/request-context.ts';

type Fields = Record<string, string | number | boolean | undefined | null>;
type Level = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: ReadonlySet<string> = new Set<Level>(['debug', 'info', 'warn', 'error']);

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

export function isSecretField(name: string): boolean {
  const words = wordsOf(name);
  // An OAuth authorization `code` travels under that bare name; `errorCode` is a code of ours.
  if (words.length === 1 && words[0] === 'code') return true;
  if (DESCRIPTIVE_WORDS.has(words.at(-1) ?? '')) return false;
  return words.some((w) => SECRET_WORDS.has(w));
}

/** The names credentials travel under in OAuth (RFC 6749, 7009, 7636), OIDC and HTTP. */
const CREDENTIAL_NAMES = [
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'id_token',
  'idToken',
  'logout_token',
  'code',
  'code_verifier',
  'client_secret',
  'clientSecret',
  'client_assertion',
  'password',
  'authorization',
  'cookie',
  '["set-cookie"]',
  'setCookie',
  'dpop',
];
/** pino redaction paths: each name at the top level and one level down (`headers.cookie`, `body.refresh_token`). */
export const REDACTED_PATHS: readonly string[] = CREDENTIAL_NAMES.flatMap((name) => [name, name.startsWith('[') ? `*${name}` : `*.${name}`]);

export const REDACTED = '[redacted]';

/**
 * Events that describe the state of the whole process, not of a request: written once.
 * A refused configuration does not change until a restart, and repeating it on every
 * request would flood the log.
 */
const ONCE_PER_PROCESS = new Set(['configuration_invalid']);
const written = new Set<string>();

function wantedLevel(): Level {
  const wanted = process.env.LOG_LEVEL ?? 'info';
  return LEVELS.has(wanted) ? (wanted as Level) : 'info';
}

/**
 * The process's logger, made again only if LOG_LEVEL changed (tests change it; the
 * server reads it once in practice). Lines go to `process.stderr.write`, synchronously
 * for files and pipes, so that nothing is lost when the process exits.
 */
let root: { level: Level; logger: Logger } | undefined;
function rootLogger(): Logger {
  const level = wantedLevel();
  if (root?.level === level) return root.logger;
  const logger = pino(
    {
      level,
      // No pid and hostname on every line: the platform's log shipper adds where a line came from.
      base: null,
      messageKey: 'event',
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
    },
    { write: (line: string) => process.stderr.write(line) },
  );
  root = { level, logger };
  return logger;
}

/** The logger of the request under way (its `requestId` bound), or the process's. */
function currentLogger(): Logger {
  const logger = rootLogger();
  const context = currentRequestContext();
  if (!context) return logger;
  if (context.logger?.parent !== logger) context.logger = { parent: logger, child: logger.child({ requestId: context.requestId }) };
  return context.logger.child as Logger;
}

function write(level: Level, event: string, fields: Fields = {}): void {
  const logger = currentLogger();
  if (!logger.isLevelEnabled(level)) return;
  if (ONCE_PER_PROCESS.has(event)) {
    if (written.has(event)) return;
    written.add(event);
  }
  const line: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line[key] = isSecretField(key) ? REDACTED : value;
  }
  logger[level](line, event);
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
