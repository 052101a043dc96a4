import { datasetHref } from "../router";

/** "3 captures to review", linking to the dataset's Captures tab; nothing when there are none. */
export function CapturesToReview({ datasetId, count, testId }: { datasetId: string; count: number; testId: string }) {
  if (!(count > 0)) return null; // also when a server without captures sends no count
  return (
    <a className="to-review" href={datasetHref(datasetId, { tab: "captures" })} data-testid={testId}>
      <span className="to-review-dot" aria-hidden="true" />
      <span className="to-review-count">{count}</span> {count === 1 ? "capture" : "captures"} to review
    </a>
  );
}
