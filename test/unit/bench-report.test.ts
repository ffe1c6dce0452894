/**
 * The bench report: bench/lib/report.md (the prose) rendered by bench/lib/template.ts with the
 * numbers of a fixed results object. The last run's figures give back the stored report byte for
 * byte; made-up runs of every scenario render every section, failed and skipped ones included.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { renderMarkdown } from '../../bench/lib/report.js';
import { renderTemplate } from '../../bench/lib/template.js';
import { everyScenarioFailedReport, everyScenarioReport, lastRunReport } from './bench-sample.js';

void describe('bench report', () => {
  void it('the last run (2026-12-03) renders to the stored report, byte for byte', () => {
    const stored = readFileSync(
      new URL('../../bench/results/2026-12-03.md', import.meta.url),
      'utf8',
    );
    assert.equal(renderMarkdown(lastRunReport()), stored);
  });

  void it('its key lines carry the figures', () => {
    const lines = renderMarkdown(lastRunReport()).split('\n');
    for (const line of [
      '# pointstream benchmark, 2026-12-03',
      '- CPU: Intel(R) Xeon(R) Processor, 2 cores',
      '| 4096 | pointstream | 175.0 (159.0–181.8) | 0.46 (0.43–0.47) | 0.49 (0.45–0.52) | 0 (0–2) | 0.2 (0.0–0.5) | 0 |',
      '| 1280 | 2.10 (1.11–2.26) | 0.91 (0.91–0.93) |',
      '## Seed workload (1,000,000 points at 4 Hz for 60 s, default MTU)',
      '| seed | 240 / 240 | 4.00 | 0 | 64.4 / 79.8 / 82.1 | 13.14 s (22%) | 13.48 s (23%) | 119 MB | 106 MB | 0 | 0.2 |',
      'Server-side per-frame latency (240 frames): p50 68.0 ms, p90 77.0 ms, p99 86.0 ms, max 89.0 ms.',
      '![CDF of per-frame latency, seed workload](2026-12-03-seed-latency.svg)',
      '| seed: every frame acked (240/240 in 60 s), p99 <= 150 ms (issue 13) | 240/240, p99 79.8 ms | met |',
    ]) {
      assert.ok(lines.includes(line), `missing: ${line}`);
    }
    assert.ok(!lines.some((line) => line.startsWith('## HTTPS')), 'a scenario that did not run');
  });

  void it('every scenario renders its section, with no placeholder left', () => {
    const text = renderMarkdown(everyScenarioReport());
    assert.doesNotMatch(text, /{{|}}/);
    const headings = text.split('\n').filter((line) => line.startsWith('## '));
    assert.deepEqual(
      headings.map((h) => h.split(/[:(,]/)[0]?.trim()),
      [
        '## Machine',
        '## Method',
        '## Ceilings',
        '## Seed workload',
        '## HTTPS signaling',
        '## Throughput against chunk size',
        '## Frame size',
        '## Concurrent clients',
        '## Cluster',
        '## aiortc',
        '## Point encodings',
        '## Point fields',
        '## Browser sender',
        '## Endurance',
        '## Failures',
        '## Targets',
      ],
    );
    for (const part of [
      'Scenarios: ceilings, seed, tls, chunks, scale, clients, cluster, aiortc, encodings, fields, browser, endurance (--quick: brief runs, not for comparison).',
      '| qrice | intensity=0.01, time=1e-6 | 3.500 | 1.600 | 1.200 | 0.140 | 0.560 | 80.0 (79.0) | 60.0 (59.0) |',
      '| qrice | intensity=0.01, time=1e-6 | time | f64 | quant-rice | 1.00e-6 | 9.90e-7 |',
      '**The client did not use the chunk size it was asked for:** asked 1,048,576 bytes, used 262,144.',
      '**Largest frame sustained at 4 Hz with nothing lost: 1,000,000 points (12 MB per frame, 48 MB/s), latency p99 79.8 ms.** The next size, 2,000,000 points (96 MB/s offered), reached 3.71 Hz / 89 MB/s with 5 late and 2 missing frames.',
      'For comparison, the bare receiver in the ceilings (MTU 4096, --rate 0): 0.47 (0.43–0.48) CPU s / 100 MB.',
      'Codec bench at 2 mm: FAILED: worker crashed\n\n',
      '(raw: 12 exactly, without the .npy header). **--quick: 100,000 points, 3 runs.**',
      '- qrice (lidar): largest frame sustained at 4 Hz: **1,000,000 points** (9.8 (9.7–9.8) MB/s)',
      '- raw (random): largest frame sustained at 4 Hz: **none of the sizes tried**',
      '## Failures\n\n- scale 4000000: send timed out / after 60 s\n- clients 8: server exited\n- cluster 3 nodes: cluster 3 nodes front: exit code 1 before it was ready\n\n## Targets',
      '![server memory over time](x-endurance-memory.svg)\n\nPlot: [x-endurance-memory.svg](x-endurance-memory.svg)\n',
      '| 2 | N1, N2 | 120 / 128 | 58.4 | N1 0.25, N2 0.25 | 0.50 | 0.25 | 0.00 | 0.60 | 1.92 | 1.2 | 0.1 | 0.4 | 0 | 0 |',
      '| 3 | FAILED: cluster 3 nodes front: exit code 1 before it was ready |',
      '| node | 10.80 | 0.500 | 200 |\n| nats-server | 5.40 | 0.250 | 400 |\n| front | 0.01 | 0.000 | – (no media) |',
      '| 4 | 1600 | 800 (nats-server bound) |',
      '| 3 | N3 | N4 | 4200 | 4260 | 2 | 2 | 3 | 1 | 1500 |',
      '**Kill -> first frame on the new node over 3 kill(s): median 3100 ms, p90 4200 ms, max 4200 ms** (all: 3100, 2900, 4200 ms).',
      '1 incomplete, 0 invalid.\n\n## aiortc',
      'of the 160 frames it got to, 150 acknowledged, 6 lost, 3 skipped; 3 reconnects, 4 sessions.',
      '| cluster failover: kill -> first frame on the new node, median <= 5 s, max <= 12 s (issue 17) | median 3100 ms, max 4200 ms over 3 kills | met |',
      '| cluster ingest: clients placed one per node (1, 2, 3 nodes) | 1: N1; 2: N1 N2; 3: failed | not met |',
    ]) {
      assert.ok(text.includes(part), `missing: ${part}`);
    }
  });

  void it('failed and skipped scenarios say so', () => {
    const text = renderMarkdown(everyScenarioFailedReport());
    assert.doesNotMatch(text, /{{|}}/);
    for (const part of [
      '| seed | FAILED: connect failed |',
      'No per-frame latencies were collected from the server log.',
      'Skipped: aiortc is not installed.\n\n## Point encodings',
      '\nskipped: no Chromium\n\n## Endurance',
      '## Point fields: the LiDAR scene with intensity, ring and time\n\nFields codec bench: FAILED: worker crashed\n\n## Browser sender',
      '\nFAILED: server died\n\n## Targets',
      '| 1 | FAILED: nats-server did not start |',
      '\nFAILED: front exited\n\n## aiortc',
      '| cluster failover: kill -> first frame on the new node, median <= 5 s, max <= 12 s (issue 17) | front exited | not met |',
    ]) {
      assert.ok(text.includes(part), `missing: ${part}`);
    }
    assert.ok(!text.includes('Largest frame sustained'), 'no verdict without a scale result');
    assert.ok(!text.includes('## Failures'), 'no failures listed');
  });
});

void describe('bench report: cluster', () => {
  void it('without nats-server the section says it was skipped, and its targets were not run', () => {
    const report = everyScenarioFailedReport();
    const text = renderMarkdown({
      ...report,
      results: { cluster: { skipped: 'no nats-server', ingest: [] } },
    });
    assert.ok(text.includes('points per frame)\n\nSkipped: no nats-server.\n\n## Targets'), text);
    assert.ok(text.includes('| cluster | skipped: no nats-server | not run |'));
  });
});

void describe('template', () => {
  void it('fills values, dotted names and the current item', () => {
    assert.equal(
      renderTemplate('{{a}} {{b.c}} {{#list}}[{{.}}]{{/list}} {{missing}}|', {
        a: 0,
        b: { c: 'x' },
        list: ['p', 'q'],
      }),
      '0 x [p][q] |',
    );
  });

  void it('renders a section per item, for an object or a true value; the inverse when empty', () => {
    const template = '{{#s}}<{{n}}{{top}}>{{/s}}{{^s}}none{{/s}}';
    assert.equal(renderTemplate(template, { s: [{ n: 1 }, { n: 2 }], top: '!' }), '<1!><2!>');
    assert.equal(renderTemplate(template, { s: { n: 3 }, top: '' }), '<3>');
    assert.equal(renderTemplate(template, { s: true, n: 4, top: '' }), '<4>');
    for (const s of [undefined, false, 0, '', []])
      assert.equal(renderTemplate(template, { s }), 'none');
  });

  void it('an inner key that is present but undefined hides the outer one', () => {
    assert.equal(renderTemplate('{{#s}}[{{x}}]{{/s}}', { x: 'outer', s: { x: undefined } }), '[]');
  });

  void it('lines holding only a section or comment tag disappear', () => {
    const template =
      'a\n{{! note }}\n{{#on}}\nb\n  {{/on}}\n{{^on}}\nc\n{{/on}}\nd {{#on}}e{{/on}}\n';
    assert.equal(renderTemplate(template, { on: true }), 'a\nb\nd e\n');
    assert.equal(renderTemplate(template, { on: false }), 'a\nc\nd \n');
  });

  void it('refuses unbalanced sections', () => {
    assert.throws(() => renderTemplate('{{#a}}x', {}), /not closed/);
    assert.throws(() => renderTemplate('{{#a}}x{{/b}}', {}), /closes/);
    assert.throws(() => renderTemplate('x{{/b}}', {}), /closes nothing/);
    assert.throws(() => renderTemplate('{{a}}', { a: { b: 1 } }), /is an object/);
  });
});
