import type { ReactNode } from 'react';
import { connection } from 'next/server';
import './globals.css';

export const metadata = {
  title: 'Cloakroom',
  description: 'A session broker that keeps tokens out of the browser.',
};

/**
 * Rendered per request, never prerendered: each page carries its own CSP nonce
 * (proxy.ts), which a page built once at build time could not.
 */
export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
