import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const client = (file) => fileURLToPath(new URL(`../../client/${file}`, import.meta.url));

/**
 * The example imports the repository's client/ as the package `cloakroom-client`, as an
 * app that installed it (`npm install <repo>/client`) would. Nothing else is special:
 * the broker fronts this app's build (`vite build` → dist/) or its dev server (`vite`).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^cloakroom-client\/react$/, replacement: client('react.js') },
      { find: /^cloakroom-client$/, replacement: client('index.js') },
    ],
  },
  build: { outDir: 'dist', emptyOutDir: true },
});
