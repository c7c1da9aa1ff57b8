import { getConfig } from '../lib/config/load.ts';
import { StartPage } from './start-page.tsx';

// The route table is runtime configuration: never prerendered at build time.
export const dynamic = 'force-dynamic';

/** The start page: one button per configured GET route, by path only (issue 13, point 5). */
export default function Home() {
  let apiPaths: string[] = [];
  try {
    apiPaths = getConfig()
      .routes.filter((route) => route.methods.has('GET'))
      .map((route) => route.path)
      .sort();
  } catch {
    // A bad configuration is refused at start (instrumentation.ts); show no buttons meanwhile.
  }
  return <StartPage apiPaths={apiPaths} />;
}
