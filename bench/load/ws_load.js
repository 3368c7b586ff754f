'use strict';
/*
 * WebSocket fan-out load generator: opens many connections, subscribes each, and measures what arrives.
 *
 * A Python client spends more CPU per frame than a server does to send it, so the load generator would be the
 * bottleneck; Node with `ws` and `bufferutil` is cheap enough to hold 10,000 connections on one core.
 * Connections open in batches (`--batch` at a time) so neither side's accept queue overflows. Each sends
 * `--send` once when open. After `--warmup` seconds, for `--window` seconds it counts update frames (per
 * connection) and their quotes, and for every quote the delay from its `time` (epoch ms) to now. Update frames
 * are Stock Quest's `{"type":"REAL_TIME_UPDATE",...,"data":{"quotes":[...]}}` (other types are ignored) or a
 * bare JSON array of quotes.
 *
 * Frames are not JSON-parsed: that costs more per frame than the server spends sending it (about 100 µs for
 * 38 Stock Quest quotes against 10 µs for this scan). Each quote's `"time":` is found by a regular expression
 * over the frame's text; a quote object has exactly one (`marketTime` does not match), the envelope none.
 * Delays go into a 1 ms histogram, so percentiles need no sort.
 *
 * Delivery: with `--interval` (the subscription's updateInterval, ms), `frames_expected` is what each
 * connection should have got between its first and last frame in the window, judged by the frames' quote times
 * (1 + round(span / interval)), summed; a connection that got none counts window / interval. Unlike frames per
 * window, this does not depend on where the window's edges fall: every connection on an interval is flushed on
 * the same tick, so an edge near a tick would move one frame in or out of every connection's count at once.
 *
 * Times: `connect_s` runs from the first connection attempt to the last open; `ready_s` from the first attempt
 * to the last connection's first message (Stock Quest's CONNECTION_ESTABLISHED; the baselines send nothing
 * before an update), null unless every connection got one.
 *
 * `--deflate 1` offers permessage-deflate (ws's defaults: context takeover, client_max_window_bits), for a server
 * with compression on; off by default. `bytes_per_s` is what the connections' TCP sockets read over the window
 * (frame headers and payloads as they crossed the wire, compressed or not; TCP/IP headers not included).
 *
 * `--url` may name several servers, comma-separated (the gateways of a cluster): connection i goes to the
 * (i mod n)-th, so the connections spread evenly and every batch reaches every server.
 *
 * Writes "window start" and "window end" lines to stderr as the window opens and closes (so a harness can sample
 * the server's CPU over the same window), then one line of JSON results to stdout.
 *
 *   node bench/load/ws_load.js --url ws://127.0.0.1:8000/ws/market-data --connections 1000 \
 *     --send '{"type":"SUBSCRIBE","data":{"symbols":["NVTX"],"updateInterval":1000}}' --interval 1000 \
 *     --warmup 3 --window 10
 */
const WebSocket = require('ws');

const TIME = /"time":(\d+)/g;
const UPDATE_PREFIX = '{"type":"REAL_TIME_UPDATE"';
const HISTOGRAM_OFFSET_MS = 1000; // a quote stamped slightly after "now" (clock granularity) still counts
const HISTOGRAM_MS = 120000; // delays past two minutes are counted as two minutes (the maximum is kept exactly)

function parseArgs(argv) {
  const options = {
    url: null, connections: 100, send: null, warmup: 3, window: 10, batch: 100, interval: 0, deflate: 0,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in options) || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    options[name] = typeof options[name] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!options.url) throw new Error('--url is required');
  return options;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** The delay (ms) below which `fraction` of the counted quotes fall, from the histogram. */
function percentile(histogram, count, fraction) {
  if (!count) return null;
  const rank = Math.min(count - 1, Math.floor(count * fraction));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i];
    if (seen > rank) return i - HISTOGRAM_OFFSET_MS;
  }
  return null;
}

class Load {
  constructor(options) {
    this.options = options;
    this.urls = options.url.split(',');
    this.opened = 0;
    this.ready = 0;
    this.firstAttempt = null;
    this.lastOpen = null;
    this.lastReady = null;
    this.closes = 0;
    this.errors = 0;
    this.measuring = false;
    this.stopping = false;
    this.frames = 0;
    this.framesByConnection = new Uint32Array(options.connections);
    this.firstFrameTime = new Float64Array(options.connections); // per connection: its first and last frames'
    this.lastFrameTime = new Float64Array(options.connections); // newest quote times
    this.quotesPerFrameMin = Infinity;
    this.quotesPerFrameMax = 0;
    this.quotes = 0;
    this.histogram = new Uint32Array(HISTOGRAM_OFFSET_MS + HISTOGRAM_MS + 1);
    this.delayMax = -Infinity;
    this.sockets = [];
  }

  /** Bytes read so far by every connection's TCP socket. */
  bytesRead() {
    return this.sockets.reduce((sum, socket) => sum + (socket._socket ? socket._socket.bytesRead : 0), 0);
  }

  /** Resolves when connection `index` is open or has failed, so a batch can wait for all of its own. */
  connect(index) {
    return new Promise((resolve) => {
      this.firstAttempt = this.firstAttempt ?? Date.now();
      const socket = new WebSocket(this.urls[index % this.urls.length], {
        perMessageDeflate: Boolean(this.options.deflate), skipUTF8Validation: true,
      });
      this.sockets.push(socket);
      let open = false;
      socket.on('open', () => {
        open = true;
        this.lastOpen = Date.now();
        this.opened += 1;
        if (this.options.send) socket.send(this.options.send);
        resolve();
      });
      socket.once('message', () => {
        this.ready += 1;
        this.lastReady = Date.now();
      });
      socket.on('message', (data, isBinary) => this.receive(index, data, isBinary));
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

  receive(index, data, isBinary) {
    if (!this.measuring || isBinary) return;
    const text = data.toString('latin1'); // only ASCII is searched: no UTF-8 decoding needed
    if (text.charCodeAt(0) !== 91 /* [ */ && !text.startsWith(UPDATE_PREFIX)) return;
    const now = Date.now();
    let quotes = 0;
    let frameTime = 0;
    TIME.lastIndex = 0;
    for (let match = TIME.exec(text); match !== null; match = TIME.exec(text)) {
      const time = Number(match[1]);
      const delay = now - time;
      if (time > frameTime) frameTime = time;
      if (delay > this.delayMax) this.delayMax = delay;
      this.histogram[Math.max(0, Math.min(delay + HISTOGRAM_OFFSET_MS, this.histogram.length - 1))] += 1;
      quotes += 1;
    }
    this.frames += 1;
    if (this.framesByConnection[index]++ === 0) this.firstFrameTime[index] = frameTime;
    this.lastFrameTime[index] = frameTime;
    this.quotes += quotes;
    if (quotes < this.quotesPerFrameMin) this.quotesPerFrameMin = quotes;
    if (quotes > this.quotesPerFrameMax) this.quotesPerFrameMax = quotes;
  }

  /** Frames each connection should have got between its first and last frame, summed (null without --interval). */
  framesExpected(seconds) {
    const interval = this.options.interval;
    if (!interval) return null;
    let expected = 0;
    for (let i = 0; i < this.framesByConnection.length; i++) {
      expected += this.framesByConnection[i]
        ? 1 + Math.round((this.lastFrameTime[i] - this.firstFrameTime[i]) / interval)
        : Math.floor((seconds * 1000) / interval);
    }
    return expected;
  }

  async run() {
    const { connections, batch, warmup, window } = this.options;
    for (let first = 0; first < connections; first += batch) {
      const size = Math.min(batch, connections - first);
      await Promise.all(Array.from({ length: size }, (_, i) => this.connect(first + i)));
    }
    await sleep(warmup);
    process.stderr.write('window start\n');
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const bytes0 = this.bytesRead();
    this.measuring = true;
    await sleep(window);
    this.measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const bytes = this.bytesRead() - bytes0;
    const cpu = process.cpuUsage(cpu0);
    process.stderr.write('window end\n');
    this.stopping = true;
    const framesByConnection = this.framesByConnection;
    return {
      connections: this.opened,
      connect_s: this.opened ? (this.lastOpen - this.firstAttempt) / 1000 : null,
      ready_s: this.ready === connections ? (this.lastReady - this.firstAttempt) / 1000 : null,
      window_s: seconds,
      frames_per_s: this.frames / seconds,
      bytes_per_s: bytes / seconds,
      deflate_connections: this.sockets.filter((socket) => socket.extensions.includes("permessage-deflate")).length,
      quotes_per_s: this.quotes / seconds,
      frames_per_connection_min: framesByConnection.reduce((a, b) => Math.min(a, b), Infinity),
      frames_per_connection_max: framesByConnection.reduce((a, b) => Math.max(a, b), 0),
      frames_expected: this.framesExpected(seconds),
      quotes_per_frame_min: this.frames ? this.quotesPerFrameMin : null,
      quotes_per_frame_max: this.frames ? this.quotesPerFrameMax : null,
      delay_p50_ms: percentile(this.histogram, this.quotes, 0.5),
      delay_p99_ms: percentile(this.histogram, this.quotes, 0.99),
      delay_max_ms: this.quotes ? this.delayMax : null,
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
