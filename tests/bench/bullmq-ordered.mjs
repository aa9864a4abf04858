// BullMQ running baton's ordered queue-only workload, for the benchmark's queue section
// (tests/src/bin/bench/bullmq.rs runs it; scripts/setup.sh's ensure_bullmq installs BullMQ).
//
// The workload: G groups (baton's plans) of J jobs each (baton's tasks), every group's jobs run
// in order, at most C groups in flight (baton's worker concurrency). Each group is its own
// queue with one Worker of `concurrency: 1`: the idiomatic way to keep a group in order without
// BullMQ Pro's groups. One Node process runs everything, as BullMQ is usually deployed (one
// process per machine, as baton's one worker process here).
//
// Bounding groups in flight: every queue and its Worker is created before the clock starts
// (`autorun: false`, connections made and ready), and all jobs are added before it starts too
// (baton's plans are submitted before its worker starts). Then C lanes each take the next group,
// start its Worker (`run()`), wait for its J `completed` events and start the next group at
// once; the finished Worker's `close()` runs in the background (awaited after the clock stops).
// So at most C Workers fetch jobs at any time, and the clock pays neither for connecting the G
// Workers' blocking connections nor for closing them (their commands share one connection):
// setting up is counted for BullMQ, not against it (baton's worker starts on the clock). What
// the clock does pay for is BullMQ's own cost of a group: a Worker's start (its stalled-jobs
// check) and its drain (a blocking wait on an empty queue, cut short by `close()`). C lanes
// rather than all G Workers running at once keeps the in-flight bound the same as baton's.
//
// Work per job: `noop` (the processor returns at once) or `spawn` (spawns /bin/true and waits
// for it to exit). Every group's jobs are checked to have started in order, each once, never
// two at a time. Redis CPU (`INFO cpu`, used_cpu_sys + used_cpu_user) is read right before the
// jobs are added and right after the last completes, so adding jobs counts (as baton's ingest
// does) and setting up and closing workers does not.
//
// Usage: node bullmq-ordered.mjs --port P --prefix KEYPREFIX --modules DIR [--groups 2000]
//        [--jobs 10] [--concurrency 8] [--work noop|spawn]
// DIR holds node_modules/ with bullmq and ioredis. Prints one JSON line: jobs, seconds,
// jobs_per_s, redis_cpu_us (the Redis server's CPU over the run), node_cpu_s, bound, bullmq.

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

function options(argv) {
  const o = { groups: 2000, jobs: 10, concurrency: 8, work: 'noop' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) && !['port', 'prefix', 'modules'].includes(key)) {
      throw new Error(`unknown option ${argv[i]}`);
    }
    o[key] = typeof o[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const need of ['port', 'prefix', 'modules']) {
    if (!o[need]) throw new Error(`--${need} is required`);
  }
  if (!['noop', 'spawn'].includes(o.work)) throw new Error(`--work is noop or spawn, not ${o.work}`);
  return o;
}

function spawnTrue() {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

async function redisCpuSeconds(conn) {
  const info = await conn.info('cpu');
  const field = (name) => Number(info.match(new RegExp(`^${name}:([0-9.]+)`, 'm'))[1]);
  return field('used_cpu_sys') + field('used_cpu_user');
}

// The processor of group g: records each job's position and checks nothing overlaps.
function processor(o, g, started, busy) {
  return async (job) => {
    if (busy[g]) throw new Error(`group ${g}: job ${job.data.seq} started while another ran`);
    busy[g] = true;
    started[g].push(job.data.seq);
    try {
      if (o.work === 'spawn') await spawnTrue();
    } finally {
      busy[g] = false;
    }
  };
}

// C lanes, each running one group's Worker after another; resolves when every job completed.
async function runLanes(o, workers, closing) {
  let next = 0;
  const lane = async () => {
    while (next < workers.length) {
      const worker = workers[next++];
      const done = new Promise((resolve, reject) => {
        let n = 0;
        worker.on('completed', () => { if (++n === o.jobs) resolve(); });
        worker.on('failed', (_job, err) => reject(err));
      });
      const running = worker.run();
      await done;
      closing.push(worker.close().then(() => running));
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
}

function checkOrder(o, started) {
  const want = Array.from({ length: o.jobs }, (_, k) => k).join(',');
  started.forEach((seqs, g) => {
    if (seqs.join(',') !== want) throw new Error(`group ${g} ran ${seqs}, expected ${want}`);
  });
}

async function main() {
  const o = options(process.argv.slice(2));
  const require = createRequire(join(o.modules, 'package.json'));
  const { Queue, Worker } = require('bullmq');
  const IORedis = require('ioredis');
  const version = require('bullmq/package.json').version;
  // One shared connection for queues and workers' commands (BullMQ's advice); each Worker
  // adds its own blocking connection. Workers need maxRetriesPerRequest: null.
  const conn = new IORedis({ host: '127.0.0.1', port: Number(o.port), maxRetriesPerRequest: null });
  const base = { connection: conn, prefix: o.prefix };
  const started = Array.from({ length: o.groups }, () => []);
  const busy = new Array(o.groups).fill(false);
  const queues = [];
  const workers = [];
  for (let g = 0; g < o.groups; g++) {
    queues.push(new Queue(`group-${g}`, base));
    workers.push(new Worker(`group-${g}`, processor(o, g, started, busy), { ...base, concurrency: 1, autorun: false }));
  }
  await Promise.all([...queues, ...workers].map((q) => q.waitUntilReady()));
  const cpuBefore = await redisCpuSeconds(conn);
  for (let g = 0; g < o.groups; g++) {
    await queues[g].addBulk(Array.from({ length: o.jobs }, (_, seq) => ({ name: 'task', data: { group: g, seq } })));
  }
  const closing = [];
  const nodeCpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await runLanes(o, workers, closing);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const nodeUsed = process.cpuUsage(nodeCpu);
  const redisCpu = (await redisCpuSeconds(conn)) - cpuBefore;
  await Promise.all(closing);
  checkOrder(o, started);
  await Promise.all(queues.map((q) => q.close()));
  await conn.quit();
  const jobs = o.groups * o.jobs;
  console.log(JSON.stringify({
    bullmq: version,
    work: o.work,
    groups: o.groups,
    jobs,
    concurrency: o.concurrency,
    seconds,
    jobs_per_s: jobs / seconds,
    redis_cpu_us: redisCpu * 1e6,
    node_cpu_s: (nodeUsed.user + nodeUsed.system) / 1e6,
    bound: `${o.concurrency} lanes, each running one group's Worker (concurrency 1) after another; all Workers created and jobs added before the clock`,
  }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
