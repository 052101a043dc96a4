// Work under way, on every page: each queued or running training job (dataset, stage,
// progress, ETA, a link to it) and each deployment on its way to the board. Read from the API
// on load and after every reconnect of the event feed, kept current by the feed in between.
import { useEffect, useRef, useState } from "react";
import {
  ACTIVE_DEPLOYMENT_STATUSES,
  api,
  type Deployment,
  type DeploymentStatus,
  type EventRecord,
  type JobRecord,
  type Stage,
} from "../api";
import { eventDatasetId, useEvents, useEventsConnected } from "../events";
import { formatSpan, shortId, stageLabel } from "../format";
import { useInterval } from "../hooks";
import { datasetHref } from "../router";

interface ActiveJob {
  id: string;
  datasetId: string;
  status: "queued" | "running";
  stage: Stage | null;
  progress: number;
  /** ETA as a wall-clock deadline, so the countdown moves between progress reports. */
  etaDeadline: number | null;
  cancelRequested: boolean;
  /** Order of the last change seen; an answer from the API never overwrites a later event. */
  seq: number;
}

interface ActiveDeployment {
  id: string;
  datasetId: string | null;
  jobId: string | null;
  status: DeploymentStatus;
  target: string | null;
  seq: number;
}

type Keyed = { id: string; seq: number };

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function jobFromRecord(job: JobRecord, seq: number): ActiveJob {
  return {
    id: job.id,
    datasetId: job.dataset_id,
    status: job.status === "queued" ? "queued" : "running",
    stage: job.stage,
    progress: job.progress,
    etaDeadline: job.stage === "training" && job.eta_seconds !== null ? Date.now() + job.eta_seconds * 1000 : null,
    cancelRequested: job.cancel_requested,
    seq,
  };
}

function deploymentFromRecord(deployment: Deployment, seq: number): ActiveDeployment {
  return {
    id: deployment.id,
    datasetId: deployment.dataset_id ?? null,
    jobId: deployment.job_id ?? null,
    status: deployment.status,
    target: deployment.target ?? null,
    seq,
  };
}

/** What the API listed, except what ended meanwhile, and what changed since the request left. */
function merged<T extends Keyed>(known: Map<string, T>, listed: T[], sentAt: number, ended: Set<string>): Map<string, T> {
  const next = new Map<string, T>();
  for (const item of listed) {
    if (ended.has(item.id)) continue;
    const current = known.get(item.id);
    next.set(item.id, current && current.seq > sentAt ? current : item);
  }
  for (const [id, item] of known) if (!next.has(id) && item.seq > sentAt) next.set(id, item);
  return next;
}

function without<T>(map: Map<string, T>, id: string): Map<string, T> {
  if (!map.has(id)) return map;
  const next = new Map(map);
  next.delete(id);
  return next;
}

export function RunningJobsBar() {
  const connected = useEventsConnected();
  const [jobs, setJobs] = useState<Map<string, ActiveJob>>(new Map());
  const [deployments, setDeployments] = useState<Map<string, ActiveDeployment>>(new Map());
  const seq = useRef(0);
  const ended = useRef(new Set<string>());
  const [, setTick] = useState(0);

  // On load, and after a reconnect (events may have been missed while it was down).
  useEffect(() => {
    let cancelled = false;
    const sentAt = seq.current;
    Promise.all([api.activeJobs(), api.activeDeployments()])
      .then(([jobRecords, deploymentRecords]) => {
        if (cancelled) return;
        const at = ++seq.current;
        setJobs((known) => {
          const listed = jobRecords.map((job) => {
            const fresh = jobFromRecord(job, at);
            const current = known.get(job.id);
            return current ? { ...fresh, etaDeadline: current.etaDeadline ?? fresh.etaDeadline } : fresh;
          });
          return merged(known, listed, sentAt, ended.current);
        });
        setDeployments((known) =>
          merged(known, deploymentRecords.map((d) => deploymentFromRecord(d, at)), sentAt, ended.current),
        );
      })
      .catch((error: unknown) => console.warn("could not load the work under way", error));
    return () => {
      cancelled = true;
    };
  }, [connected]);

  useEvents((event) => {
    if (event.type.startsWith("job.")) onJobEvent(event);
    else if (event.type.startsWith("deployment.")) onDeploymentEvent(event);
  });

  const onJobEvent = (event: EventRecord) => {
    const p = event.payload;
    const id = text(p.job_id);
    if (!id) return;
    const status = text(p.status);
    if (status !== "queued" && status !== "running") {
      ended.current.add(id);
      setJobs((known) => without(known, id));
      return;
    }
    if (ended.current.has(id)) return;
    const at = ++seq.current;
    setJobs((known) => {
      const current = known.get(id);
      const stage = p.stage === undefined ? (current?.stage ?? null) : ((p.stage as Stage | null) ?? null);
      let etaDeadline = current?.etaDeadline ?? null;
      if (event.type === "job.progress") {
        const eta = typeof p.eta_seconds === "number" ? p.eta_seconds : null;
        etaDeadline = eta !== null ? Date.now() + eta * 1000 : stage === "training" ? etaDeadline : null;
      } else if (status === "queued") {
        etaDeadline = null;
      }
      const next = new Map(known);
      next.set(id, {
        id,
        datasetId: eventDatasetId(event) ?? current?.datasetId ?? "",
        status,
        stage: status === "queued" ? null : stage,
        progress: typeof p.progress === "number" ? p.progress : (current?.progress ?? 0),
        etaDeadline,
        cancelRequested: event.type === "job.cancel_requested" || (current?.cancelRequested ?? false),
        seq: at,
      });
      return next;
    });
  };

  const onDeploymentEvent = (event: EventRecord) => {
    const p = event.payload;
    const id = text(p.deployment_id);
    if (!id || event.type === "deployment.cancel_requested") return;
    const status = text(p.status) as DeploymentStatus | null;
    if (!status || !ACTIVE_DEPLOYMENT_STATUSES.includes(status)) {
      ended.current.add(id);
      setDeployments((known) => without(known, id));
      return;
    }
    if (ended.current.has(id)) return;
    const at = ++seq.current;
    setDeployments((known) =>
      new Map(known).set(id, {
        id,
        datasetId: eventDatasetId(event),
        jobId: text(p.job_id),
        status,
        target: text(p.target),
        seq: at,
      }),
    );
  };

  const ticking = [...jobs.values()].some((job) => job.etaDeadline !== null);
  useInterval(() => setTick((n) => n + 1), 1_000, ticking);

  if (jobs.size === 0 && deployments.size === 0) return null;
  // Running first, then the queue in the order it was seen.
  const ordered = [...jobs.values()].sort((a, b) => Number(a.status === "queued") - Number(b.status === "queued"));
  return (
    <section className="jobbar" aria-label="Work under way" data-testid="running-bar">
      {ordered.map((job) => (
        <JobLine key={job.id} job={job} />
      ))}
      {[...deployments.values()].map((deployment) => (
        <DeploymentLine key={deployment.id} deployment={deployment} />
      ))}
    </section>
  );
}

function JobLine({ job }: { job: ActiveJob }) {
  const percent = Math.round(Math.max(0, Math.min(1, job.progress)) * 100);
  return (
    <div
      className="jobbar-item"
      data-testid="running-job"
      data-job-id={job.id}
      data-dataset-id={job.datasetId}
      data-status={job.status}
      data-stage={job.stage ?? ""}
    >
      <span className={`status-pill ${job.status}`}>{job.status === "queued" ? "queued" : "training"}</span>
      <a href={datasetHref(job.datasetId)} className="jobbar-dataset" title="The dataset">
        {job.datasetId}
      </a>
      <span data-testid="running-job-stage">
        {job.status === "queued" ? "waiting for a worker" : stageLabel(job.stage)}
      </span>
      {job.status === "running" && (
        <span className="jobbar-progress" data-testid="running-job-progress" data-progress={job.progress.toFixed(3)}>
          <span className="mini-bar" aria-hidden="true">
            <span style={{ width: `${percent}%` }} />
          </span>
          {percent} %
        </span>
      )}
      <span className="muted" data-testid="running-job-eta">
        {etaText(job)}
      </span>
      {job.cancelRequested && <span className="muted">cancelling…</span>}
      <a className="jobbar-open" href={datasetHref(job.datasetId, { job: job.id })} data-testid="running-job-link">
        Job {shortId(job.id)}
      </a>
    </div>
  );
}

function etaText(job: ActiveJob): string {
  if (job.status === "queued") return "";
  if (job.etaDeadline !== null) return `about ${formatSpan(Math.max(0, (job.etaDeadline - Date.now()) / 1000))} left`;
  if (job.stage === "eval" || job.stage === "export") return "almost done";
  return "estimating…";
}

const DEPLOYMENT_STEPS: Record<string, string> = {
  pending: "waiting for a worker",
  transferring: "sending the bundle",
  applying: "applying on the board",
};

function DeploymentLine({ deployment }: { deployment: ActiveDeployment }) {
  return (
    <div
      className="jobbar-item"
      data-testid="running-deployment"
      data-deployment-id={deployment.id}
      data-status={deployment.status}
    >
      <span className={`status-pill ${deployment.status}`}>deploying</span>
      {deployment.datasetId && (
        <a href={datasetHref(deployment.datasetId)} className="jobbar-dataset" title="The dataset">
          {deployment.datasetId}
        </a>
      )}
      <span data-testid="running-deployment-step">{DEPLOYMENT_STEPS[deployment.status] ?? deployment.status}</span>
      {deployment.target && <span className="muted">to {deployment.target}</span>}
      {deployment.datasetId && (
        <a
          className="jobbar-open"
          href={datasetHref(deployment.datasetId, { tab: "models" })}
          data-testid="running-deployment-link"
        >
          {deployment.jobId ? `Model ${shortId(deployment.jobId)}` : "Models"}
        </a>
      )}
    </div>
  );
}
