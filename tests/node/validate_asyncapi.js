#!/usr/bin/env node
'use strict';
// Parses docs/asyncapi.yaml with @asyncapi/parser, the way CI validates it (tests/test_asyncapi.py runs this).
//
//   node tests/node/validate_asyncapi.js [SPEC] [--dump] [--check-messages FILE]
//
// SPEC            the document (default: docs/asyncapi.yaml beside this repository's root).
// --dump          print the parsed document, $refs resolved, as JSON on stdout: the Python tests read the spec
//                 from here (they have no YAML parser), so they see exactly what the parser saw.
// --check-messages FILE
//                 validate server messages against the spec: FILE holds one JSON object a line,
//                 {"endpoint": "market-data", "message": {...}}. Each message must be one the spec says the server
//                 sends on /ws/<endpoint> (a send operation's message whose payload's `type` is const), and match
//                 that message's payload schema (ajv, which @asyncapi/parser brings). Prints a JSON report.
//
// Diagnostics go to stderr. Exit codes: 0 valid, 1 bad arguments, 2 a diagnostic of error severity (or no
// document), 3 --check-messages found a message that is undocumented or does not match its schema.

const fs = require('fs');
const path = require('path');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
const Ajv = require('ajv');

const SEVERITY = ['error', 'warning', 'info', 'hint'];

function usage(message) {
  process.stderr.write(`validate_asyncapi.js: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { spec: path.join(__dirname, '..', '..', 'docs', 'asyncapi.yaml'), dump: false, messages: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dump') options.dump = true;
    else if (arg === '--check-messages') {
      if (i + 1 >= argv.length) usage('--check-messages needs a file');
      options.messages = argv[++i];
    } else if (arg.startsWith('--')) usage(`unknown argument ${arg}`);
    else options.spec = arg;
  }
  return options;
}

// The wire type a message carries: its payload's `type` const, directly or in one of its allOf parts.
function wireType(message) {
  const payload = message.payload || {};
  for (const part of [payload, ...(payload.allOf || [])]) {
    const type = part.properties && part.properties.type;
    if (type && type.const !== undefined) return type.const;
  }
  return null;
}

// {"/ws/orders": {"ORDER_FILLED": payloadSchema, ...}, ...} from the send operations.
function sentByAddress(spec) {
  const table = {};
  for (const operation of Object.values(spec.operations || {})) {
    if (operation.action !== 'send') continue;
    const byType = (table[operation.channel.address] ||= {});
    for (const message of operation.messages || []) byType[wireType(message)] = message.payload;
  }
  return table;
}

function checkMessages(spec, file) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const sent = sentByAddress(spec);
  const validators = new Map();
  const report = { checked: 0, types: {}, undocumented: [], invalid: [] };
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((line) => line.trim());
  for (const line of lines) {
    const { endpoint, message } = JSON.parse(line);
    const address = `/ws/${endpoint}`;
    const schema = (sent[address] || {})[message.type];
    report.checked += 1;
    if (schema === undefined) {
      report.undocumented.push({ address, type: message.type });
      continue;
    }
    if (!validators.has(schema)) validators.set(schema, ajv.compile(schema));
    const validate = validators.get(schema);
    const key = `${address} ${message.type}`;
    report.types[key] = (report.types[key] || 0) + 1;
    if (!validate(message)) {
      report.invalid.push({ address, type: message.type, errors: validate.errors.slice(0, 5), message });
    }
  }
  return report;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const text = fs.readFileSync(options.spec, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text, { source: path.resolve(options.spec) });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    const where = d.path && d.path.length ? d.path.join('.') : '(document)';
    process.stderr.write(`${SEVERITY[d.severity] || d.severity}: ${d.code} at ${where}: ${d.message}\n`);
  }
  if (errors || !document) {
    process.stderr.write(`${options.spec}: ${errors} error(s)\n`);
    process.exit(2);
  }
  const spec = document.json();
  if (options.dump) process.stdout.write(JSON.stringify(spec) + '\n');
  if (options.messages) {
    const report = checkMessages(spec, options.messages);
    process.stdout.write(JSON.stringify(report) + '\n');
    if (report.undocumented.length || report.invalid.length) process.exit(3);
  }
}

main().catch((error) => {
  process.stderr.write(`validate_asyncapi.js: ${error.stack || error}\n`);
  process.exit(2);
});
