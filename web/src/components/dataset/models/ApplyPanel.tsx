// "Apply training to TARS": deploys the dataset's latest succeeded job and follows the deployment.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import {
  api,
  ApiError,
  errorMessage,
  FINAL_DEPLOYMENT_STATUSES,
  type Board,
  type DeployTarget,
  type Deployment,
  type JobMetrics,
  type JobRecord,
} from "../../../api";
import { useEvents } from "../../../events";
import { boardAddress } from "../../../format";
import { useInterval } from "../../../hooks";
import { useNotify } from "../../../notifications";

type TargetState = { kind: "loading" } | { kind: "missing" } | { kind: "error"; detail: string } | { kind: "ok"; target: DeployTarget };

const deploymentKey = (datasetId: string) => `waketrain.deployment.${datasetId}`;

/** `boards` is null until listed, or when they cannot be: the server's default target then stands alone. */
function disabledReason(
  target: TargetState,
  latestJob: JobRecord | null,
  boards: Board[] | null,
  board: Board | null,
): ReactNode {
  if (target.kind === "loading") return "Checking the deploy target…";
  if (target.kind === "missing") return "Deploying is not available on this server yet";
  if (target.kind === "error") return target.detail;
  if (!latestJob) return "Train a model first: nothing to apply yet.";
  if (latestJob.status !== "succeeded") {
    return `The latest training job is ${latestJob.status}; apply becomes possible when a job succeeds.`;
  }
  if (boards !== null && boards.length === 0) {
    return (
      <>
        No board to ship to yet: add one on the <a href="#/boards">Boards page</a>.
      </>
    );
  }
  // The server's verdict is on the default board; another board's problems come back from POST /deploy.
  const onDefault = board === null || board.id === target.target.board_id;
  if (onDefault && !target.target.configured) {
    return target.target.reason ?? "No deploy target is configured on the server.";
  }
  return null;
}

const BACKEND_NAMES: Record<string, string> = {
  oww_head: "openWakeWord head",
  marblenet: "MarbleNet",
  causal: "causal streaming model",
};

/** Which model the button ships, what kind it is and what it costs to stream. */
function ModelToShip({ metrics }: { metrics: JobMetrics }) {
  const { backend, stream_cost: cost } = metrics;
  if (!metrics.model_id) return null;
  return (
    <p className="muted small" data-testid="apply-model">
      Ships <code>{metrics.model_id}</code>
      {backend && (
        <>
          , {BACKEND_NAMES[backend] ?? backend} (<code>{backend}</code>)
        </>
      )}
      {cost && (
        <>
          : {cost.cpu_percent.toFixed(2)} % of one CPU core per second of audio, measured on {cost.machine}; the board's CPU
          differs
        </>
      )}
      .
    </p>
  );
}

export function ApplyPanel({ datasetId, latestJob }: { datasetId: string; latestJob: JobRecord | null }) {
  const notify = useNotify();
  const [target, setTarget] = useState<TargetState>({ kind: "loading" });
  const [boards, setBoards] = useState<Board[] | null>(null);
  const [pickedBoardId, setPickedBoardId] = useState<string | null>(null);
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
    api
      .listBoards()
      .then(setBoards)
      // Without the list, the server's default target stands alone.
      .catch(() => undefined);
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

  const board =
    boards?.find((b) => b.id === pickedBoardId) ?? boards?.find((b) => b.is_default) ?? boards?.[0] ?? null;
  const reason = disabledReason(target, latestJob, boards, board);

  const apply = async () => {
    if (!latestJob) return;
    setStarting(true);
    setError(null);
    setDeployment(null);
    try {
      const started = await api.startDeployment(latestJob.id, board?.id);
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

  const running = deploymentId !== null && !final;

  return (
    <section className="card apply-panel">
      <div className="apply-head">
        <div>
          <h2>Apply training to TARS</h2>
          <p className="muted small">
            Ships the latest succeeded model of this dataset to the board over SSH; a failed apply rolls back.
            {board ? (
              <>
                {" "}
                Target: <strong>{board.name}</strong> <code>{boardAddress(board)}</code>
              </>
            ) : (
              target.kind === "ok" &&
              target.target.target && (
                <>
                  {" "}
                  Target: <code>{target.target.target}</code>
                </>
              )
            )}
          </p>
        </div>
        <div className="apply-actions">
          {boards !== null && boards.length > 1 && (
            <label className="inline-field">
              <span>Board</span>
              <select
                data-testid="apply-board"
                value={board?.id ?? ""}
                disabled={starting || running}
                onChange={(e) => setPickedBoardId(e.target.value)}
              >
                {boards.map((b) => (
                  <option key={b.id} value={b.id}>
                    {b.is_default ? `${b.name} (default)` : b.name}
                  </option>
                ))}
              </select>
            </label>
          )}
          <button
            className="btn primary"
            data-testid="apply-button"
            disabled={reason !== null || starting || running}
            onClick={() => void apply()}
          >
            {starting ? "Starting…" : running ? "Applying…" : "Apply training to TARS"}
          </button>
        </div>
      </div>
      {latestJob?.status === "succeeded" && latestJob.metrics && <ModelToShip metrics={latestJob.metrics} />}
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
