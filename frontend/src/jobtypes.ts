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

/** Reads the server's job types, falling back to the table. */
export async function loadJobTypes(get: () => Promise<unknown>): Promise<JobType[]> {
  try {
    const body = (await get()) as { job_types?: JobType[]; types?: JobType[] } | JobType[];
    const list = Array.isArray(body) ? body : (body.job_types ?? body.types);
    if (Array.isArray(list) && list.length > 0 && list.every((t) => typeof t.type === 'string' && typeof t.cost === 'number')) {
      return list.map((t) => ({ type: t.type, display_name: t.display_name || t.type, cost: t.cost }));
    }
  } catch {
    // older server: no endpoint
  }
  return FALLBACK_JOB_TYPES;
}

export const credits = (n: number) => (n === 0 ? '0 (free)' : `${n} credit${n === 1 ? '' : 's'}`);
