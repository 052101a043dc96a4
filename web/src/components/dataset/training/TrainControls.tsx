import { useState } from "react";
import { api, errorMessage, type DatasetSummary, type JobRecord } from "../../../api";
import { useNotify } from "../../../notifications";

/** Parse the overrides textarea: a JSON object of dotted config keys, or a sentence saying why not. */
function parseOverrides(text: string): { value: Record<string, unknown> } | { error: string } {
  if (!text.trim()) return { value: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { error: `Config overrides are not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { error: 'Config overrides must be a JSON object, e.g. {"epochs": 10}.' };
  }
  return { value: parsed as Record<string, unknown> };
}

export function TrainControls({
  summary,
  onStarted,
}: {
  summary: DatasetSummary;
  onStarted: (job: JobRecord) => void;
}) {
  const notify = useNotify();
  const [advanced, setAdvanced] = useState(false);
  const [overrides, setOverrides] = useState("{}");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const parsed = parseOverrides(overrides);
  const blocked = !summary.ready_to_train;

  const train = async () => {
    if (busy) return;
    if ("error" in parsed) {
      setAdvanced(true);
      setError(parsed.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const job = await api.train(summary.id, parsed.value);
      notify("Training queued", { kind: "success", body: `Job ${job.id.slice(0, 8)}` });
      onStarted(job);
    } catch (e) {
      setError(errorMessage(e));
      notify("Training was not started", { kind: "error", body: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="train-controls">
      <div className="train-row">
        <button
          className="btn primary"
          data-testid="train-button"
          // Busy is aria-disabled only: a disabled button loses the focus, which the training
          // modal gives back to it on closing.
          disabled={blocked}
          aria-disabled={busy || undefined}
          onClick={() => void train()}
          title={blocked ? summary.training_blockers.join(" ") : undefined}
        >
          {busy ? "Starting…" : "Train"}
        </button>
        <button
          className="btn ghost small"
          data-testid="train-advanced"
          aria-expanded={advanced}
          onClick={() => setAdvanced((v) => !v)}
        >
          Advanced {advanced ? "▴" : "▾"}
        </button>
      </div>
      {blocked && (
        <ul className="train-blockers" data-testid="train-blockers">
          {summary.training_blockers.map((reason) => (
            <li key={reason}>{reason}</li>
          ))}
        </ul>
      )}
      {advanced && (
        <label className="field overrides">
          <span>
            Config overrides <span className="muted">(JSON, dotted keys, e.g. {'{"epochs": 10}'})</span>
          </span>
          <textarea
            data-testid="train-overrides"
            rows={4}
            spellCheck={false}
            value={overrides}
            onChange={(e) => {
              setOverrides(e.target.value);
              setError(null);
            }}
            aria-invalid={"error" in parsed}
          />
          {"error" in parsed && <small className="form-error" data-testid="train-overrides-error">{parsed.error}</small>}
        </label>
      )}
      {error && !("error" in parsed && error === parsed.error) && (
        <p className="form-error" role="alert" data-testid="train-error">
          {error}
        </p>
      )}
    </div>
  );
}
