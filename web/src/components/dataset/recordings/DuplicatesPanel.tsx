import { useCallback, useEffect, useState } from "react";
import { api, errorMessage, urls, type DuplicateGroup, type Hygiene } from "../../../api";
import { useEvents } from "../../../events";
import { formatDateTime, shortId } from "../../../format";
import { useNotify } from "../../../notifications";

/** Identical clips, grouped; the same audio under two labels first. Training keeps the first
 * clip of a group and quietly drops the rest, so the operator chooses which one stays. */
export function DuplicatesPanel({ datasetId }: { datasetId: string }) {
  const notify = useNotify();
  const [hygiene, setHygiene] = useState<Hygiene | null>(null);
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(() => {
    api.duplicates(datasetId).then(setHygiene, () => setHygiene(null));
  }, [datasetId]);
  useEffect(load, [load]);
  useEvents((event) => {
    if (event.dataset_id === datasetId && event.type.startsWith("clip.")) load();
  });

  if (!hygiene || hygiene.groups.length === 0) return null;

  const keep = async (group: DuplicateGroup, clipId: string) => {
    setBusy(group.sha256);
    try {
      const deleted = await api.keepOneDuplicate(datasetId, group.sha256, clipId);
      notify(`Kept one clip, discarded ${deleted.length}`, { kind: "success", body: "Discarded clips can be restored." });
      load();
    } catch (e) {
      notify("Could not resolve the duplicates", { kind: "error", body: errorMessage(e) });
    } finally {
      setBusy(null);
    }
  };

  const conflicts = hygiene.label_conflicts;
  return (
    <section className="card duplicates" data-testid="duplicates">
      <div className="duplicates-head">
        <p>
          <strong data-testid="duplicates-summary">
            {hygiene.left_out} {hygiene.left_out === 1 ? "clip repeats" : "clips repeat"} another
            {conflicts > 0 && `, ${conflicts} under a different label`}
          </strong>
          <span className="muted small">
            {" "}
            Training uses only the first of identical clips{conflicts > 0 && ", with its label"}: keep the right one.
          </span>
        </p>
        <button className="btn small" aria-expanded={open} onClick={() => setOpen((o) => !o)} data-testid="duplicates-toggle">
          {open ? "Hide" : "Review"}
        </button>
      </div>
      {open && (
        <ul className="duplicate-groups">
          {hygiene.groups.map((group) => (
            <li key={group.sha256} data-testid="duplicate-group" data-conflict={group.conflict}>
              <p className="small">
                {group.conflict ? (
                  <span className="badge danger">labels differ: {group.labels.join(" / ")}</span>
                ) : (
                  <span className="badge">{group.labels[0]}</span>
                )}{" "}
                {group.clips.length} identical clips <code>{group.sha256.slice(0, 12)}</code>
              </p>
              <table className="duplicate-clips">
                <tbody>
                  {group.clips.map((clip, i) => (
                    <tr key={clip.id}>
                      <td>
                        <code>{shortId(clip.id)}</code>
                        {i === 0 && <span className="muted small"> (training uses this one)</span>}
                      </td>
                      <td>{clip.label}</td>
                      <td>{clip.speaker ?? "no speaker"}</td>
                      <td className="muted small">{formatDateTime(clip.created_at)}</td>
                      <td>
                        <audio controls preload="none" src={urls.clipAudio(clip.id)} aria-label={`clip ${shortId(clip.id)}`} />
                      </td>
                      <td>
                        <button
                          className="btn small"
                          data-testid="keep-duplicate"
                          data-clip-id={clip.id}
                          disabled={busy !== null}
                          onClick={() => void keep(group, clip.id)}
                        >
                          Keep this one
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
