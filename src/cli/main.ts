#!/usr/bin/env node
// The `pointstream` command: V8's flags first (see v8-flags.ts), then the CLI itself.
import { setFlagsFromString } from 'node:v8';
import { v8FlagsFor } from './v8-flags.js';

const flags = v8FlagsFor(process.argv, process.env);
if (flags !== '') setFlagsFromString(flags);
await import('./program.js');
