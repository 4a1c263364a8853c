import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// One build serves both the Go server (at /) and the desktop app (app://rendertrust/).
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // Keep the bundle reproducible: no build time or absolute paths in output.
    reportCompressedSize: false,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
