// Job types and their prices. The server's GET /api/v1/jobs/types is used
// when it exists; until then this table (the guide's and the README's
// prices) is the one place the app knows them.

export interface JobType {
  type: string;
  display_name: string;
  cost: number;
}

export const FALLBACK_JOB_TYPES: JobType[] = [
  { type: 'render', display_name: 'Render', cost: 10 },
  { type: 'inference', display_name: 'AI Inference', cost: 5 },
  { type: 'generic', display_name: 'Generic', cost: 1 },
  { type: 'cpu_benchmark', display_name: 'CPU Benchmark', cost: 1 },
  { type: 'echo', display_name: 'Echo (test)', cost: 0 },
];

/** One entry of GET /api/v1/jobs/types. */
interface ServerJobType {
  job_type: string;
  display_name?: string;
  cost: number;
}

/** Reads the server's job types ({"job_types": [{job_type, display_name, cost}]}), falling back to the table. */
export async function loadJobTypes(get: () => Promise<unknown>): Promise<JobType[]> {
  try {
    const list = ((await get()) as { job_types?: ServerJobType[] }).job_types;
    if (Array.isArray(list) && list.length > 0 && list.every((t) => typeof t.job_type === 'string' && typeof t.cost === 'number')) {
      return list.map((t) => ({ type: t.job_type, display_name: t.display_name || t.job_type, cost: t.cost }));
    }
  } catch {
    // older server: no endpoint
  }
  return FALLBACK_JOB_TYPES;
}

export const credits = (n: number) => (n === 0 ? '0 (free)' : `${n} credit${n === 1 ? '' : 's'}`);
