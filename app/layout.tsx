import type { ReactNode } from 'react';
import './globals.css';

export const metadata = {
  title: 'Cloakroom',
  description: 'A session broker that keeps tokens out of the browser.',
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
