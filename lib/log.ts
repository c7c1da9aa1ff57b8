/**
 * Structured logs, one JSON object per line on stderr. Callers pass named fields,
 * never a whole object from a request or a token response, so that no token, code,
 * cookie value or secret can slip into a log line. Fields whose names look like they
 * carry secrets are masked as a second line of defence.
 */
type Fields = Record<string, string | number | boolean | undefined | null>;
type Level = 'debug' | 'info' | 'warn' | 'error';

const SECRET_FIELD = /token|secret|password|cookie|authorization|code_verifier|^code$|assertion/i;
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const wanted = (process.env.LOG_LEVEL ?? 'info') as Level;
  return LEVELS[wanted] ?? LEVELS.info;
}

function write(level: Level, event: string, fields: Fields = {}): void {
  if (LEVELS[level] < threshold()) return;
  const line: Record<string, unknown> = { time: new Date().toISOString(), level, event };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line[key] = SECRET_FIELD.test(key) ? '[redacted]' : value;
  }
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

export const log = {
  debug: (event: string, fields?: Fields) => write('debug', event, fields),
  info: (event: string, fields?: Fields) => write('info', event, fields),
  warn: (event: string, fields?: Fields) => write('warn', event, fields),
  error: (event: string, fields?: Fields) => write('error', event, fields),
};
