import { urls, type MissedClip } from "../../../api";
import { formatNumber, formatPercent, formatScore } from "../../../format";

// The held-out positives a model did not hear: listen to each, see its level and the likely
// cause, and what to record next. An average FRR hides the one voice that is not heard.
export function MissedClips({ missed }: { missed: MissedClip[] }) {
  if (missed.length === 0) {
    return (
      <p className="muted small" data-testid="missed-none">
        Every held-out positive was heard, in quiet and in noise.
      </p>
    );
  }
  return (
    <div className="missed-clips" data-testid="missed-clips">
      <h4>Held-out positives it missed ({missed.length})</h4>
      {/* Focusable: on a phone the table scrolls sideways in here, and the keyboard scrolls it too. */}
      <div className="table-wrap" role="region" aria-label="Held-out positives it missed" tabIndex={0}>
        <table className="data-table missed">
          <thead>
            <tr>
              <th>Listen</th>
              <th>Speaker</th>
              <th>Peak score</th>
              <th>Level (peak / RMS)</th>
              <th>Clipped</th>
              <th>Likely cause, and what to record next</th>
            </tr>
          </thead>
          <tbody>
            {missed.map((clip) => (
              <tr key={clip.clip_id} data-testid="missed-clip" data-clip-id={clip.clip_id}>
                <td>
                  <audio controls preload="none" src={urls.clipAudio(clip.clip_id)} aria-label={`clip ${clip.clip_id}`} />
                </td>
                <td>{clip.speaker ?? "—"}</td>
                <td className="nowrap">
                  {Object.entries(clip.scores).map(([snr, score]) => (
                    <div key={snr} className={clip.missed_at.includes(snr) ? "" : "muted"}>
                      {formatScore(score)} at {snr}
                      {clip.missed_at.includes(snr) ? " (missed)" : ""}
                    </div>
                  ))}
                </td>
                <td className="num nowrap">
                  {dbfs(clip.peak_dbfs)} / {dbfs(clip.rms_dbfs)}
                </td>
                <td className="num">{clip.clipping_ratio == null ? "—" : formatPercent(clip.clipping_ratio, 2)}</td>
                <td>
                  <div data-testid="missed-cause">{clip.cause}</div>
                  <div className="muted small">{clip.advice}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function dbfs(value: number | null): string {
  return value == null ? "—" : `${formatNumber(value, 1)} dBFS`;
}
