/** Input level, 0-1 on a -60..0 dBFS scale. */
export function LevelMeter({ level, testId, active }: { level: number; testId: string; active: boolean }) {
  const clamped = Math.max(0, Math.min(1, level));
  const zone = clamped > 0.95 ? "hot" : clamped > 0.75 ? "warm" : "ok";
  return (
    <div
      className={`level-meter ${active ? "active" : ""}`}
      data-testid={testId}
      data-level={clamped.toFixed(3)}
      role="meter"
      aria-label="Input level"
      aria-valuemin={0}
      aria-valuemax={1}
      aria-valuenow={clamped}
    >
      <div className={`level-fill ${zone}`} style={{ width: `${clamped * 100}%` }} />
    </div>
  );
}
