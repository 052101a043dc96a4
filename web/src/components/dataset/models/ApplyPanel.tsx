// "Apply training to TARS": deploys the dataset's latest succeeded job and follows the deployment.
import { useCallback, useEffect, useState } from "react";
import {
  api,
  ApiError,
  errorMessage,
  FINAL_DEPLOYMENT_STATUSES,
  type DeployTarget,
  type Deployment,
  type JobRecord,
} from "../../../api";
import { useEvents } from "../../../events";
import { useInterval } from "../../../hooks";
import { useNotify } from "../../../notifications";

type TargetState = { kind: "loading" } | { kind: "missing" } | { kind: "error"; detail: string } | { kind: "ok"; target: DeployTarget };

const deploymentKey = (datasetId: string) => `waketrain.deployment.${datasetId}`;

function disabledReason(target: TargetState, latestJob: JobRecord | null): string | null {
  if (target.kind === "loading") return "Checking the deploy target…";
  if (target.kind === "missing") return "Deploying is not available on this server yet";
  if (target.kind === "error") return target.detail;
  if (!latestJob) return "Train a model first: nothing to apply yet.";
  if (latestJob.status !== "succeeded") {
    return `The latest training job is ${latestJob.status}; apply becomes possible when a job succeeds.`;
  }
  if (!target.target.configured) return target.target.reason ?? "No deploy target is configured on the server.";
  return null;
}

export function ApplyPanel({ datasetId, latestJob }: { datasetId: string; latestJob: JobRecord | null }) {
  const notify = useNotify();
  const [target, setTarget] = useState<TargetState>({ kind: "loading" });
  const [deployment, setDeployment] = useState<Deployment | null>(null);
  const [deploymentId, setDeploymentId] = useState<string | null>(() => window.localStorage.getItem(deploymentKey(datasetId)));
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const final = deployment !== null && FINAL_DEPLOYMENT_STATUSES.includes(deployment.status);

  useEffect(() => {
    api
      .deployTarget()
      .then((t) => setTarget({ kind: "ok", target: t }))
      .catch((e: unknown) =>
        setTarget(e instanceof ApiError && (e.status === 404 || e.status === 405) ? { kind: "missing" } : { kind: "error", detail: errorMessage(e) }),
      );
  }, []);

  const poll = useCallback(async () => {
    if (!deploymentId) return;
    try {
      setDeployment(await api.getDeployment(deploymentId));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        window.localStorage.removeItem(deploymentKey(datasetId));
        setDeploymentId(null);
      } else setError(errorMessage(e));
    }
  }, [deploymentId, datasetId]);

  useEffect(() => {
    void poll();
  }, [poll]);
  useInterval(() => void poll(), 1_000, deploymentId !== null && !final);
  useEvents((event) => {
    if (event.type.startsWith("deployment.") && event.payload.deployment_id === deploymentId) void poll();
  });

  const apply = async () => {
    if (!latestJob) return;
    setStarting(true);
    setError(null);
    setDeployment(null);
    try {
      const started = await api.startDeployment(latestJob.id);
      window.localStorage.setItem(deploymentKey(datasetId), started.id);
      setDeployment(started);
      setDeploymentId(started.id);
    } catch (e) {
      setError(errorMessage(e));
      notify("Apply failed to start", { kind: "error", body: errorMessage(e) });
    } finally {
      setStarting(false);
    }
  };

  const cancel = async () => {
    if (!deploymentId) return;
    try {
      setDeployment(await api.cancelDeployment(deploymentId));
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  const dismiss = () => {
    window.localStorage.removeItem(deploymentKey(datasetId));
    setDeploymentId(null);
    setDeployment(null);
    setError(null);
  };

  const reason = disabledReason(target, latestJob);
  const running = deploymentId !== null && !final;

  return (
    <section className="card apply-panel">
      <div className="apply-head">
        <div>
          <h2>Apply training to TARS</h2>
          <p className="muted small">
            Ships the latest succeeded model of this dataset to the board over SSH; a failed apply rolls back.
            {target.kind === "ok" && target.target.target && (
              <>
                {" "}
                Target: <code>{target.target.target}</code>
              </>
            )}
          </p>
        </div>
        <button
          className="btn primary"
          data-testid="apply-button"
          disabled={reason !== null || starting || running}
          onClick={() => void apply()}
        >
          {starting ? "Starting…" : running ? "Applying…" : "Apply training to TARS"}
        </button>
      </div>
      {reason && (
        <p className="disabled-reason" data-testid="apply-reason">
          {reason}
        </p>
      )}
      {error && (
        <p className="form-error" role="alert" data-testid="apply-error">
          {error}
        </p>
      )}
      {deployment && (
        <div className="deployment">
          <div className="deployment-head">
            <span>
              Deployment <code>{deployment.id.slice(0, 8)}</code>:{" "}
              <span className={`status-pill ${deployment.status}`} data-testid="apply-status">
                {deployment.status}
              </span>
            </span>
            {final && (
              <button className="btn ghost small" onClick={dismiss}>
                Dismiss
              </button>
            )}
            {/* Until the board starts applying it; from then on it finishes or rolls back. */}
            {(deployment.status === "pending" || deployment.status === "transferring") && (
              <button
                className="btn ghost small"
                data-testid="apply-cancel"
                disabled={deployment.cancel_requested}
                onClick={() => void cancel()}
              >
                {deployment.cancel_requested ? "Cancelling…" : "Cancel"}
              </button>
            )}
          </div>
          {deployment.error && <p className="form-error">{deployment.error}</p>}
          <pre className="log" data-testid="apply-log" tabIndex={0} aria-label="Deployment log">
            {deployment.log || "Waiting for output…"}
          </pre>
        </div>
      )}
    </section>
  );
}
