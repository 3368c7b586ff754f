'use strict';
/*
 * WebSocket fan-out load generator: opens many connections, subscribes each, and measures what arrives.
 *
 * A Python client spends more CPU per frame than a server does to send it, so the load generator would be the
 * bottleneck; Node with `ws` and `bufferutil` is cheap enough to hold 10,000 connections on one core.
 * Connections open in batches (`--batch` at a time) so neither side's accept queue overflows. Each sends
 * `--send` once when open. After `--warmup` seconds, for `--window` seconds it counts update frames and their
 * quotes, and for every quote the delay from its `time` (epoch ms) to now. Update frames are Stock Quest's
 * `{"type":"REAL_TIME_UPDATE","data":{"quotes":[...]}}` (other types are ignored) or a bare JSON array of quotes.
 *
 * Writes "window start" and "window end" lines to stderr as the window opens and closes (so a harness can sample
 * the server's CPU over the same window), then one line of JSON results to stdout.
 *
 *   node bench/load/ws_load.js --url ws://127.0.0.1:8000/ws/market-data --connections 1000 \
 *     --send '{"type":"SUBSCRIBE","data":{"symbols":["NVTX"],"updateInterval":1000}}' --warmup 3 --window 10
 */
const WebSocket = require('ws');

function parseArgs(argv) {
  const options = { url: null, connections: 100, send: null, warmup: 3, window: 10, batch: 100 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in options) || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    options[name] = typeof options[name] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!options.url) throw new Error('--url is required');
  return options;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

function percentile(sorted, fraction) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] : null;
}

class Load {
  constructor(options) {
    this.options = options;
    this.opened = 0;
    this.firstOpen = null;
    this.lastOpen = null;
    this.closes = 0;
    this.errors = 0;
    this.measuring = false;
    this.stopping = false;
    this.frames = 0;
    this.delays = [];
  }

  /** Resolves when this connection is open or has failed, so a batch can wait for all of its own. */
  connect() {
    return new Promise((resolve) => {
      const socket = new WebSocket(this.options.url, { perMessageDeflate: false });
      let open = false;
      socket.on('open', () => {
        open = true;
        const now = Date.now();
        this.firstOpen = this.firstOpen ?? now;
        this.lastOpen = now;
        this.opened += 1;
        if (this.options.send) socket.send(this.options.send);
        resolve();
      });
      socket.on('message', (data, isBinary) => this.receive(data, isBinary));
      socket.on('error', () => {
        this.errors += 1;
        resolve();
      });
      socket.on('close', () => {
        if (open && !this.stopping) this.closes += 1;
        resolve();
      });
    });
  }

  receive(data, isBinary) {
    if (!this.measuring || isBinary) return;
    const now = Date.now();
    const message = JSON.parse(data.toString());
    let quotes;
    if (Array.isArray(message)) quotes = message;
    else if (message.type === 'REAL_TIME_UPDATE') quotes = message.data.quotes;
    else return;
    this.frames += 1;
    for (const quote of quotes) this.delays.push(now - quote.time);
  }

  async run() {
    const { connections, batch, warmup, window } = this.options;
    for (let first = 0; first < connections; first += batch) {
      const size = Math.min(batch, connections - first);
      await Promise.all(Array.from({ length: size }, () => this.connect()));
    }
    await sleep(warmup);
    process.stderr.write('window start\n');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    this.measuring = true;
    await sleep(window);
    this.measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    process.stderr.write('window end\n');
    this.stopping = true;
    const delays = Float64Array.from(this.delays).sort();
    return {
      connections: this.opened,
      connect_s: this.opened ? (this.lastOpen - this.firstOpen) / 1000 : null,
      window_s: seconds,
      frames_per_s: this.frames / seconds,
      quotes_per_s: delays.length / seconds,
      delay_p50_ms: percentile(delays, 0.5),
      delay_p99_ms: percentile(delays, 0.99),
      delay_max_ms: delays.length ? delays[delays.length - 1] : null,
      closes: this.closes,
      errors: this.errors,
      cpu_s: (cpu.user + cpu.system) / 1e6,
    };
  }
}

async function main() {
  const load = new Load(parseArgs(process.argv.slice(2)));
  const result = await load.run();
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0)); // exiting drops every socket at once
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
