import { LABELS, type Label } from "../api";

export function LabelSelect({
  value,
  onChange,
  testId,
  disabled,
}: {
  value: Label;
  onChange: (label: Label) => void;
  testId: string;
  disabled?: boolean;
}) {
  return (
    <select data-testid={testId} value={value} disabled={disabled} onChange={(e) => onChange(e.target.value as Label)}>
      {LABELS.map((label) => (
        <option key={label} value={label}>
          {label}
        </option>
      ))}
    </select>
  );
}

export const LABEL_HINTS: Record<Label, string> = {
  positive: "Say the wake phrase once, naturally, with a moment of quiet before and after.",
  negative: "Say anything but the wake phrase: other words, similar-sounding phrases, chatter.",
  noise: "Record the room without speech: fans, music, TV, street noise.",
};
