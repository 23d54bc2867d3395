// A pool worker process: runs jobs one at a time as the pool sends them. Bundled to dist/fuzz/worker.js.
import { runJob, type Job } from './job';

if (!process.send) throw new Error('fuzz/worker.ts runs as a child process with an IPC channel');
process.on('message', (job: Job) => process.send!(runJob(job)));
