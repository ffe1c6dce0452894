// Bundles the browser pages (web/) into dist/web with esbuild. TODO(issue 7)
import { mkdirSync } from 'node:fs';
mkdirSync(new URL('../dist/web/', import.meta.url), { recursive: true });
