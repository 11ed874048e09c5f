// BullMQ reference for `make bench-delivery`: the usual Node.js Redis job
// queue processing N delayed no-op jobs on the same Redis. Prints jobs/s.
// usage: node bullmq_bench.mjs REDIS_PORT N CONCURRENCY
import { Queue, Worker } from 'bullmq';

const [port, n, conc] = process.argv.slice(2).map(Number);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const name = 'bench-' + process.pid;
const queue = new Queue(name, { connection });
const CHUNK = 1000;

for (let i = 0; i < n; i += CHUNK) {
  const jobs = [];
  for (let k = i; k < Math.min(n, i + CHUNK); k++)
    jobs.push({ name: 'noop', data: { k }, opts: { delay: 1, removeOnComplete: true } });
  await queue.addBulk(jobs);
}
let done = 0;
const t0 = process.hrtime.bigint();
const finished = new Promise((resolve) => {
  const worker = new Worker(name, async () => {}, { connection, concurrency: conc });
  worker.on('completed', () => {
    if (++done === n) resolve(worker);
  });
});
const worker = await finished;
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ jobs: n, seconds: secs, rate: n / secs }));
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
process.exit(0);
