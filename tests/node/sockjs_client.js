#!/usr/bin/env node
'use strict';
// A real sockjs-client session for integration tests, one JSON line per event on stdout.
//
//   node tests/node/sockjs_client.js --url http://127.0.0.1:PORT/prefix --transport websocket \
//     --send '{"type":"SUBSCRIBE","data":{"symbols":["AAPL"]}}' [--send ...] \
//     --until-type SUBSCRIPTION_CONFIRMED,INITIAL_DATA --count 2 --timeout-ms 5000
//
// --transport   websocket | xhr-streaming | xhr-polling: the only transport sockjs-client may use.
// --send        a message sent after open, in the order given (repeatable; sent as given).
// --until-type  message types (the "type" field of JSON messages) to count; omitted: count all.
// --count       how many counted messages end the run (default 1).
// --until-close succeed when the server closes the session instead of counting messages.
// --timeout-ms  give up after this long (default 10000).
//
// Prints {"event":"open","transport":"<name sockjs-client reports>"},
// {"event":"message","data":<JSON-parsed, or the raw string>} and {"event":"close","code":..,"reason":..}.
// Exit codes: 0 done, 1 bad arguments, 2 timeout, 3 closed before enough messages,
// 4 the transport actually used differs from --transport.

const SockJS = require('sockjs-client');

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];

function usage(message) {
  process.stderr.write(`sockjs_client.js: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { sends: [], types: null, count: 1, timeoutMs: 10000, untilClose: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--url': options.url = value(); break;
      case '--transport': options.transport = value(); break;
      case '--send': options.sends.push(value()); break;
      case '--until-type': options.types = new Set(value().split(',').map((t) => t.trim()).filter(Boolean)); break;
      case '--count': options.count = Number.parseInt(value(), 10); break;
      case '--timeout-ms': options.timeoutMs = Number.parseInt(value(), 10); break;
      case '--until-close': options.untilClose = true; break;
      default: usage(`unknown argument ${flag}`);
    }
  }
  if (!options.url) usage('--url is required');
  if (!TRANSPORTS.includes(options.transport)) usage(`--transport must be one of ${TRANSPORTS.join(', ')}`);
  if (!(options.count >= 1)) usage('--count must be a positive integer');
  if (!(options.timeoutMs > 0)) usage('--timeout-ms must be a positive integer');
  return options;
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const sock = new SockJS(options.url, null, { transports: [options.transport] });
  let counted = 0;
  let finished = false;

  const finish = (code) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    try { sock.close(); } catch (e) { /* already closed */ }
    // Open sockets of an aborted transport would keep Node alive; stdout to a pipe is synchronous.
    setImmediate(() => process.exit(code));
  };

  const timer = setTimeout(() => {
    process.stderr.write(`sockjs_client.js: timed out after ${options.timeoutMs} ms (${counted} counted)\n`);
    finish(2);
  }, options.timeoutMs);

  sock.onopen = () => {
    emit({ event: 'open', transport: sock.transport });
    if (sock.transport !== options.transport) {
      process.stderr.write(`sockjs_client.js: asked for ${options.transport}, got ${sock.transport}\n`);
      finish(4);
      return;
    }
    for (const message of options.sends) sock.send(message);
  };

  sock.onmessage = (e) => {
    let data = e.data;
    try { data = JSON.parse(e.data); } catch (err) { /* not JSON: report the raw string */ }
    emit({ event: 'message', data });
    if (options.untilClose) return;
    const type = data !== null && typeof data === 'object' ? data.type : undefined;
    if (options.types === null || options.types.has(type)) counted += 1;
    if (counted >= options.count) finish(0);
  };

  sock.onclose = (e) => {
    emit({ event: 'close', code: e.code, reason: e.reason });
    finish(options.untilClose ? 0 : 3);
  };
}

main();
