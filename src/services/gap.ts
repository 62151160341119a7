import type { GapReason } from "../broker/broker.js";
import { GapReason as GapReasonEnum, type Gap } from "../../gen/rivulet/stream/v1/gap_pb.js";

/** The `rivulet.stream.v1.Gap` fields for a broker gap. */
export function gapOf(reason: GapReason): Pick<Gap, "reason" | "description"> {
  switch (reason) {
    case "trimmed":
      return {
        reason: GapReasonEnum.HISTORY_TRIMMED,
        description: "messages after the cursor were removed by retention",
      };
    case "epoch_changed":
      return {
        reason: GapReasonEnum.EPOCH_CHANGED,
        description: "the stream's log was recreated; messages after the cursor are gone",
      };
  }
}
