import { existsSync } from 'node:fs';

/** Debian's chromium, or CHROMIUM_PATH. Playwright cannot download a browser here. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => !!p && existsSync(p));
}
