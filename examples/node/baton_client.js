#!/usr/bin/env node
// Enqueue a baton plan from Node.js and follow it to its end, with ioredis only.
//
//     npm install ioredis
//     node baton_client.js PLAN.json [--redis-url redis://127.0.0.1:6379] [--prefix baton]
//
// Prints the plan id, then one line per event of the plan. Exit status: 0 when the plan
// completes, 1 when it fails, is cancelled, runs out of budget or its document is refused,
// 2 when the plan file cannot be read.
//
// What baton needs from a client is one LPUSH of the document onto `{baton}:submit` (the prefix
// in braces: a Redis Cluster hash tag). Events are published on `baton:events` (and kept per plan
// in `baton:{<plan id>}:events`, each with `seq`), so subscribing before the LPUSH misses nothing.
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const Redis = require('ioredis');

// Event kinds that end a plan, with the exit status each means.
const ENDS = {
  plan_completed: 0,
  plan_failed: 1,
  plan_cancelled: 1,
  plan_budget_exhausted: 1,
  submission_rejected: 1,
};

function option(args, name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

async function main() {
  const args = process.argv.slice(2);
  const file = args[0];
  const url = option(args, '--redis-url', 'redis://127.0.0.1:6379');
  const prefix = option(args, '--prefix', 'baton');
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`cannot read ${file}: ${e.message}`);
    return 2;
  }
  // Name the plan here, so its events can be told from others'.
  if (!doc.plan_id) doc.plan_id = crypto.randomUUID();
  const plan = doc.plan_id;

  const subscriber = new Redis(url);
  const client = new Redis(url);
  await subscriber.subscribe(`${prefix}:events`);
  // A follow-up's plan has events already: only those after the submission count.
  const firstSeq = Number((await client.hget(`${prefix}:{${plan}}:plan`, 'event_seq')) || 0);
  const ended = new Promise((resolve) => {
    subscriber.on('message', (_channel, raw) => {
      const event = JSON.parse(raw);
      const seq = event.seq === undefined ? firstSeq : event.seq;
      if (event.plan_id !== plan || seq < firstSeq) return;
      const detail = event.reason || event.result || '';
      console.log(`${event.at.slice(11, 19)} ${event.kind} ${event.task_id || ''} ${detail}`.trimEnd());
      if (event.kind in ENDS) resolve(ENDS[event.kind]);
    });
  });
  await client.lpush(`{${prefix}}:submit`, JSON.stringify(doc));
  console.log(plan);
  const status = await ended;
  subscriber.disconnect();
  client.disconnect();
  return status;
}

main().then(
  (status) => process.exit(status),
  (e) => {
    console.error(e.message);
    process.exit(1);
  },
);
