// Free-text lengths are counted in Unicode code points, whether or not the
// string needs counting at all.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { checkText } from "../../src/services/validate.js";

function outcome(value: string, min: number, max: number): string {
  try {
    checkText("text", value, min, max);
    return "ok";
  } catch (error) {
    expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
    return ConnectError.from(error).rawMessage;
  }
}

describe("checkText", () => {
  it("takes min to max code points, however many UTF-16 units they use", () => {
    const emoji = "\u{1F600}";
    expect(outcome("x".repeat(4096), 1, 4096)).toBe("ok");
    expect(outcome(emoji.repeat(4096), 1, 4096)).toBe("ok");
    expect(outcome("x".repeat(4097), 1, 4096)).toBe("text is longer than 4096 characters");
    expect(outcome(emoji.repeat(4097), 1, 4096)).toBe("text is longer than 4096 characters");
    expect(outcome("", 0, 10)).toBe("ok");
    expect(outcome("", 1, 10)).toBe("text is required");
    expect(outcome(emoji, 1, 1)).toBe("ok");
    expect(outcome(emoji, 2, 10)).toBe("text is shorter than 2 characters");
    expect(outcome(`${emoji}x`, 2, 10)).toBe("ok");
  });

  it("refuses whitespace alone where text is required, and takes it where it is optional", () => {
    for (const blank of [" ", "\t\n\r ", "\u00a0\u3000", " ".repeat(4096)]) {
      expect(outcome(blank, 1, 4096)).toBe("text must not be only whitespace");
      expect(outcome(blank, 0, 4096)).toBe("ok");
    }
    expect(outcome(" x ", 1, 4096)).toBe("ok");
  });
});
