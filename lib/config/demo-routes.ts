/**
 * The route table used when neither `BFF_ROUTES` nor `BFF_ROUTES_FILE` is set: the two
 * demo APIs that `npm run demo` starts (one per audience, to show per-route tokens).
 * Plain data, so that lib/ never imports demo/.
 */
export const DEMO_ROUTES = [
  {
    path: '/api/demo',
    upstream: 'http://localhost:3002',
    auth: 'required',
    resource: 'http://localhost:3002/',
    scopes: ['demo:read'],
  },
  {
    path: '/api/reports',
    upstream: 'http://localhost:3003',
    auth: 'required',
    resource: 'http://localhost:3003/',
    scopes: ['reports:read'],
  },
] as const;
