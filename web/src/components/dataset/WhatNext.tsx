import { useCallback, useEffect, useState } from "react";
import { api, type Checklist, type ChecklistStep, type StepKey } from "../../api";
import { eventDatasetId, useEvents } from "../../events";
import { useCoalesced } from "../../hooks";
import { updateParams } from "../../router";

/** Where each step is done: the tab that holds it, or the Train button. */
const PLACE: Record<StepKey, { label: string; tab?: string }> = {
  phrase: { label: "" },
  positives: { label: "Record", tab: "record" },
  voices: { label: "Record", tab: "record" },
  negatives: { label: "Upload", tab: "upload" },
  noise: { label: "Record", tab: "record" },
  train: { label: "Train" },
  evaluate: { label: "Models", tab: "models" },
  apply: { label: "Models", tab: "models" },
};

const collapsedKey = (datasetId: string) => `waketrain.whatNext.collapsed.${datasetId}`;

function goTo(step: ChecklistStep) {
  const place = PLACE[step.key];
  if (place.tab) updateParams({ tab: place.tab }, false);
  else {
    const train = document.querySelector<HTMLButtonElement>('[data-testid="train-button"]');
    train?.scrollIntoView({ block: "center" });
    train?.focus();
  }
}

/** The dataset's checklist from the first recording to a model on the board: the first run's
 * guide, and afterwards the dataset's "what next". */
export function WhatNext({ datasetId }: { datasetId: string }) {
  const [list, setList] = useState<Checklist | null>(null);
  const [collapsed, setCollapsed] = useState(() => window.localStorage.getItem(collapsedKey(datasetId)) === "1");

  const load = useCallback(() => {
    api.checklist(datasetId).then(setList, () => setList(null));
  }, [datasetId]);
  useEffect(load, [load]);
  const refresh = useCoalesced(load);
  useEvents((event) => {
    if (eventDatasetId(event) === datasetId || event.type.startsWith("deployment.")) refresh();
  });

  if (!list) return null;
  const done = list.steps.filter((s) => s.done).length;
  const toggle = () => {
    window.localStorage.setItem(collapsedKey(datasetId), collapsed ? "0" : "1");
    setCollapsed(!collapsed);
  };

  return (
    <section className="card what-next" data-testid="what-next" aria-label="What next">
      <div className="what-next-head">
        <h2>What next</h2>
        <span className="muted small" data-testid="what-next-progress">
          {done} of {list.steps.length} steps done
        </span>
        <button className="btn ghost small" aria-expanded={!collapsed} onClick={toggle}>
          {collapsed ? "Show" : "Hide"}
        </button>
      </div>
      {!collapsed && (
        <ol className="what-next-steps">
          {list.steps.map((step) => {
            const isNext = step.key === list.next;
            return (
              <li
                key={step.key}
                data-testid="what-next-step"
                data-key={step.key}
                data-done={step.done}
                className={`${step.done ? "done" : ""} ${isNext ? "next" : ""}`}
              >
                <span className="what-next-mark" aria-hidden="true">
                  {step.done ? "✓" : ""}
                </span>
                <div className="what-next-body">
                  <strong>{step.title}</strong>
                  {!step.required && <span className="muted small"> (recommended)</span>}
                  <span className="muted small"> · {step.detail}</span>
                  {!step.done && step.want > 1 && (
                    <div
                      className="progress small-bar"
                      role="progressbar"
                      aria-label={`${step.title}: ${step.have} of ${step.want}`}
                      aria-valuemin={0}
                      aria-valuemax={step.want}
                      aria-valuenow={Math.min(step.have, step.want)}
                    >
                      <div className="progress-fill" style={{ width: `${Math.min(1, step.have / step.want) * 100}%` }} />
                    </div>
                  )}
                  {isNext && <p className="small">{step.why}</p>}
                </div>
                {isNext && PLACE[step.key].label && (
                  <button className="btn small primary" data-testid="what-next-action" onClick={() => goTo(step)}>
                    {PLACE[step.key].label}
                  </button>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
