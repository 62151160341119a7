import http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import type { HttpRequest, HttpResponse } from "./mount.js";

/** What connect-node reads and discards of an HTTP/1.1 body left unread before the connection is closed instead. */
const maxDrainBytes = 256 * 1024;
/** How long a half-closed HTTP/1.1 connection stays open for the client to read the answer. */
const closeDelayMs = 500;

/**
 * Prepares a response sent before its request body was read to the end (a
 * body over the size limit), as connect-node's `universalResponseToNodeResponse`
 * does; call it before `writeHead`, and add the headers it returns.
 *
 * Why: a client still sending the rest of the body can block on flow control
 * while it waits for us to read it. On HTTP/2 the stream is reset with
 * NO_ERROR once the response is out, which stops the client's upload without
 * touching the connection's other streams. HTTP/1.1 cannot stop one request:
 * up to 256 KiB of the rest is read and dropped so the connection stays
 * usable; past that the response says `connection: close`, and the socket is
 * half-closed first and destroyed a little later, so the client has time to
 * read the answer before its unsent bytes make its TCP stack drop it.
 */
export async function settleUnreadBody(req: HttpRequest, res: HttpResponse): Promise<OutgoingHttpHeaders> {
  if (req.complete) return {};
  if ("stream" in res) {
    const stream = res.stream;
    // Node sends the (empty) trailers on setImmediate from its own wantTrailers listener: a setImmediate queued here runs after it.
    stream.once("wantTrailers", () => {
      setImmediate(() => {
        if (stream.state.remoteClose === 0) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
    });
    return {};
  }
  if (!res.shouldKeepAlive) return {};
  let failed = false;
  let drained = 0;
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      drained += chunk.byteLength;
      if (drained > maxDrainBytes) break;
    }
  } catch {
    failed = true;
  }
  const socket = res.socket;
  if (req.complete || socket === null) return {};
  if (!failed) {
    socket.destroySoon = () => {
      socket.end(() => setTimeout(() => socket.destroy(), closeDelayMs).unref());
    };
  }
  return { connection: "close" };
}
