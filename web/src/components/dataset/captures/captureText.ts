// Words for what the detector thought and what the reviewer decided, shared by the queue and the detail.
import type { CaptureRecord } from "../../../api";

export const KIND_TEXT = { wake: "Woke", near_miss: "Near miss" } as const;

export function verdictText(capture: CaptureRecord): string {
  if (capture.status === "unreviewed") return "to review";
  if (capture.status === "discarded") return "discarded";
  if (capture.verdict === "positive") return "real wake";
  if (capture.verdict === "negative") return "false wake";
  return "reviewed";
}

/** Where the score peaked: the end of the highest hop's window, in seconds from the start of the audio. */
export function peakTime(capture: CaptureRecord): number | null {
  if (capture.scores.length === 0) return null;
  let best = 0;
  for (let i = 1; i < capture.scores.length; i++) if (capture.scores[i] > capture.scores[best]) best = i;
  return (best + 1) * capture.hop_seconds;
}
