/**
 * Repeated percent-decoding, shared by the two checks that must see through encodings:
 * the proxy's path safety and the `returnTo` check. An attacker's `%252e%252e` is `..`
 * to a server that decodes twice, so each check looks at every decoded form.
 */

/** How many decodings are examined; a value that still changes after them is refused. */
export const MAX_DECODE_PASSES = 3;

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * One percent-decoding pass, lenient like the WHATWG "percent-decode" (a `%` without
 * two hex digits stays literal), so the result is what any decoder produces.
 * `undefined` when a run is not valid UTF-8 (overlong `%C0%AE`, lone surrogates): some
 * decoders map those to `.` or `/`.
 */
function percentDecodeOnce(text: string): string | undefined {
  let malformed = false;
  const decoded = text.replace(PERCENT_RUN, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      malformed = true;
      return run;
    }
  });
  return malformed ? undefined : decoded;
}

/**
 * `text` and its successive decodings until it stops changing. 'malformed' when a pass
 * fails; 'too-deep' when it still changes after MAX_DECODE_PASSES.
 */
export function decodedForms(text: string): string[] | 'malformed' | 'too-deep' {
  const forms = [text];
  let current = text;
  for (let pass = 0; pass <= MAX_DECODE_PASSES; pass++) {
    const next = percentDecodeOnce(current);
    if (next === undefined) return 'malformed';
    if (next === current) return forms;
    if (pass === MAX_DECODE_PASSES) return 'too-deep';
    forms.push(next);
    current = next;
  }
  return 'too-deep';
}
