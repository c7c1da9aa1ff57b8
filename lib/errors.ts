/**
 * The broker's one error type. Every failure that reaches a client is a
 * `BrokerError` with a code from CONTRACT.md; `errorResponse` is the single place
 * that maps codes to HTTP. Anything else is a bug: it is logged and answered with a
 * generic 500 whose body never echoes internals.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthenticated: 401,
  session_expired: 401,
  csrf: 403,
  not_found: 404,
  method_not_allowed: 405,
  rate_limited: 429,
  upstream_unavailable: 502,
  idp_unavailable: 503,
  /** The shared store (Redis) could not be reached in time; the session is kept and nothing is cleared. */
  store_unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class BrokerError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Headers the answer must carry (Allow, Retry-After, Set-Cookie to clear a session). */
  readonly headers: ReadonlyArray<[string, string]>;
  /** A short message that is safe to show: never a token, a code or a provider's raw error. */
  readonly publicMessage: string | undefined;
  /**
   * The session itself is over (the provider rejected its grant): the answer clears the
   * cookie. False for a request that merely lost a race — that one must never clear
   * the cookie the browser may already have replaced.
   */
  readonly endsSession: boolean;

  constructor(
    code: ErrorCode,
    options: { publicMessage?: string; cause?: unknown; headers?: Array<[string, string]>; endsSession?: boolean } = {},
  ) {
    super(options.publicMessage ?? code, { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.headers = options.headers ?? [];
    this.publicMessage = options.publicMessage;
    this.endsSession = options.endsSession ?? false;
  }
}
