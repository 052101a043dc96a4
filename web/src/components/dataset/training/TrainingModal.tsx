import { useCallback, useEffect, useRef, useState } from "react";
import {
  api,
  errorMessage,
  FINAL_JOB_STATUSES,
  STAGES,
  type JobRecord,
  type JobStatus,
  type Stage,
} from "../../../api";
import { useEvents } from "../../../events";
import { formatFalseAccepts, formatNumber, formatPercent, formatSpan, shortId, stageLabel } from "../../../format";
import { useFocusTrap, useInterval } from "../../../hooks";
import { useNotify } from "../../../notifications";
import { updateParams } from "../../../router";
import { LogTail } from "./LogTail";
import { GpuLine, type GpuTelemetry } from "./GpuLine";

interface LiveState {
  message: string | null;
  gpu: GpuTelemetry | null;
  epochLine: string | null;
  /** ETA as a wall-clock deadline, so the countdown moves between progress reports. */
  etaDeadline: number | null;
}

const POLL_MS = 3_000;

function isFinal(status: JobStatus | undefined): boolean {
  return status !== undefined && FINAL_JOB_STATUSES.includes(status);
}

export function TrainingModal({ jobId, onClose }: { jobId: string; onClose: () => void }) {
  const notify = useNotify();
  const [job, setJob] = useState<JobRecord | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [live, setLive] = useState<LiveState>({ message: null, gpu: null, epochLine: null, etaDeadline: null });
  const [cancelling, setCancelling] = useState(false);
  const [, setTick] = useState(0);
  const final = isFinal(job?.status);

  // The keyboard stays in the dialog, and Escape closes it as Close does.
  const dialog = useRef<HTMLDivElement>(null);
  useFocusTrap(dialog, onClose);

  const load = useCallback(async () => {
    try {
      const fetched = await api.getJob(jobId);
      setJob((current) => (current && isFinal(current.status) && !isFinal(fetched.status) ? current : fetched));
      setLoadError(null);
    } catch (e) {
      setLoadError(errorMessage(e));
    }
  }, [jobId]);

  useEffect(() => {
    void load();
  }, [load]);
  // Events drive the view; a slow poll covers a dropped connection.
  useInterval(() => void load(), POLL_MS, !final);
  useInterval(() => setTick((n) => n + 1), 1_000, !final && live.etaDeadline !== null);

  useEvents((event) => {
    const p = event.payload;
    if (p.job_id !== jobId || !event.type.startsWith("job.")) return;
    if (event.type === "job.cancel_requested") {
      setJob((j) => (j ? { ...j, cancel_requested: true } : j));
      return;
    }
    setJob((j) => {
      if (!j || (isFinal(j.status) && event.type !== `job.${j.status}`)) return j;
      return {
        ...j,
        status: typeof p.status === "string" ? (p.status as JobStatus) : j.status,
        stage: p.stage === undefined ? j.stage : (p.stage as Stage | null),
        progress: typeof p.progress === "number" ? p.progress : j.progress,
        error: typeof p.error === "string" ? p.error : j.error,
      };
    });
    if (event.type === "job.progress") {
      const metrics = (p.metrics ?? {}) as Record<string, unknown>;
      const eta = typeof p.eta_seconds === "number" ? p.eta_seconds : null;
      setLive((current) => ({
        message: typeof p.message === "string" ? p.message : current.message,
        gpu: (metrics.gpu as GpuTelemetry | undefined) ?? current.gpu,
        epochLine: epochLine(metrics) ?? current.epochLine,
        etaDeadline: eta !== null ? Date.now() + eta * 1000 : p.stage === "training" ? current.etaDeadline : null,
      }));
    }
    if (event.type === "job.requeued" && typeof p.reason === "string") {
      setLive((current) => ({ ...current, message: `requeued: ${p.reason as string}` }));
    }
    if (/^job\.(succeeded|failed|cancelled)$/.test(event.type)) void load();
  });

  const cancel = async () => {
    setCancelling(true);
    try {
      setJob(await api.cancelJob(jobId));
    } catch (e) {
      notify("Could not cancel", { kind: "error", body: errorMessage(e) });
    } finally {
      setCancelling(false);
    }
  };

  const status = job?.status;
  const progress = job ? Math.max(0, Math.min(1, job.progress)) : 0;

  return (
    <div className="modal-backdrop">
      <div
        ref={dialog}
        tabIndex={-1}
        className="modal training-modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="training-title"
        data-testid="training-modal"
      >
        <div className="modal-head">
          <h2 id="training-title">
            Training <code>{shortId(jobId)}</code>
          </h2>
          <span className={`status-pill ${status ?? "unknown"}`} data-testid="training-status">
            {status ?? "loading"}
          </span>
        </div>
        {loadError && !job && <p className="form-error">{loadError}</p>}

        <ol className="stage-steps">
          {STAGES.map((stage, index) => {
            const current = job?.stage ? STAGES.indexOf(job.stage) : -1;
            const state =
              status === "succeeded" || index < current
                ? "done"
                : index === current
                  ? final
                    ? "stopped"
                    : "current"
                  : "todo";
            return (
              <li key={stage} className={`step ${state}`} aria-current={state === "current" ? "step" : undefined}>
                <span className="step-dot">{state === "done" ? "✓" : index + 1}</span>
                {stageLabel(stage)}
              </li>
            );
          })}
        </ol>

        <div className="progress-line">
          <div
            className="progress"
            role="progressbar"
            aria-label="Training progress"
            aria-valuemin={0}
            aria-valuemax={1}
            aria-valuenow={progress}
            data-testid="training-progress"
            data-progress={progress.toFixed(3)}
          >
            <div className={`progress-fill ${status ?? ""}`} style={{ width: `${progress * 100}%` }} />
          </div>
          <span className="progress-text">{Math.round(progress * 100)} %</span>
        </div>

        <dl className="facts">
          <dt>Stage</dt>
          <dd data-testid="training-stage" data-stage={job?.stage ?? ""}>
            {job?.stage ?? (status === "queued" ? "waiting for a worker" : "—")}
          </dd>
          <dt>Time left</dt>
          <dd data-testid="training-eta">{etaText(job, live.etaDeadline)}</dd>
          <dt>Latest</dt>
          <dd className="message">
            {live.message ?? "—"}
            {live.epochLine && <span className="muted"> · {live.epochLine}</span>}
          </dd>
          <dt>GPU</dt>
          <dd data-testid="training-gpu">
            <GpuLine gpu={live.gpu} />
          </dd>
        </dl>

        {final && job && <FinalOutcome job={job} />}

        <LogTail jobId={jobId} ended={final} />

        <div className="modal-actions">
          {job?.cancel_requested && !final && <span className="muted small">Cancel requested; the worker stops at its next check.</span>}
          <button
            className="btn danger"
            data-testid="training-cancel"
            disabled={final || !job || cancelling || job.cancel_requested}
            onClick={() => void cancel()}
          >
            {cancelling ? "Cancelling…" : "Cancel training"}
          </button>
          <button className="btn" data-testid="training-close" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}

function FinalOutcome({ job }: { job: JobRecord }) {
  const text = job.status === "failed" ? `failed: ${job.error ?? "no reason recorded"}` : job.status;
  const m = job.metrics ?? {};
  return (
    <div className={`final-outcome ${job.status}`} data-testid="training-final">
      <strong>{text}</strong>
      {job.status === "succeeded" && (
        <span>
          {" "}
          — FRR {formatPercent(m.frr)}, false accepts {formatFalseAccepts(m)}, AUC {formatNumber(m.auc, 3)}
          {typeof m.threshold === "number" && <>, threshold {formatNumber(m.threshold, 3)}</>}.{" "}
          <button className="link" onClick={() => updateParams({ tab: "models", highlight: job.id }, false)}>
            See it in Models
          </button>
        </span>
      )}
      {job.status === "cancelled" && job.error && <span className="muted"> ({job.error})</span>}
    </div>
  );
}

function etaText(job: JobRecord | null, deadline: number | null): string {
  if (!job) return "—";
  if (isFinal(job.status)) return job.status === "succeeded" ? "done" : "—";
  if (job.status === "queued") return "waiting for a worker";
  if (deadline !== null) return `about ${formatSpan(Math.max(0, (deadline - Date.now()) / 1000))} left`;
  if (job.stage === "eval" || job.stage === "export") return "almost done";
  if (job.eta_seconds !== null && job.stage === "training") return `about ${formatSpan(job.eta_seconds)} left`;
  return "estimating…";
}

function epochLine(metrics: Record<string, unknown>): string | null {
  if (typeof metrics.epoch !== "number") return null;
  const parts = [`epoch ${metrics.epoch}`];
  if (typeof metrics.train_loss === "number") parts.push(`loss ${metrics.train_loss.toFixed(4)}`);
  if (typeof metrics.val_loss === "number") parts.push(`val loss ${metrics.val_loss.toFixed(4)}`);
  if (typeof metrics.val_recall === "number") parts.push(`val recall ${metrics.val_recall.toFixed(3)}`);
  return parts.join(" · ");
}
