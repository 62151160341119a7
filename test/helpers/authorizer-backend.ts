import { once } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** The path Rivulet posts its questions to (Connect protocol, unary, JSON). */
export const authorizePath = "/rivulet.authz.v1.RoomAuthorizer/Authorize";

/** One question as the backend received it. */
export interface AuthorizeQuestion {
  readonly userId: string;
  readonly roles: readonly string[];
  readonly room: string;
  /** `ROOM_ACTION_READ` or `ROOM_ACTION_WRITE`, as proto3 JSON names the enum. */
  readonly action: string;
}

/** What the backend answers to a question. */
export interface Decision {
  readonly allowed: boolean;
  readonly ttlSeconds: number;
}

/** How the backend behaves: answer from its table, fail with 500, never answer, or answer 200 with a body that is not an AuthorizeResponse. */
export type BackendMode = "answer" | "fail" | "hang" | "garbage";

/**
 * An application's RoomAuthorizer as a team would write it, in any language:
 * a plain HTTP server reading the JSON body by hand and answering JSON, with
 * no Rivulet or Connect code. Its decisions come from a table the test edits;
 * it counts the questions it got and remembers the `Authorization` headers.
 */
export class AuthorizerBackend {
  /** user, room and action (`read`/`write`) to the answer; a question missing from it is refused for 60 s. */
  readonly table = new Map<string, Decision>();
  /** Every question received, in order (including those it failed or did not answer). */
  readonly questions: AuthorizeQuestion[] = [];
  /** The `Authorization` header of every request, in order ("" when absent). */
  readonly authorizations: string[] = [];
  mode: BackendMode = "answer";

  private readonly hanging = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: http.Server) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    server.on("request", (request: IncomingMessage, response: ServerResponse) => void this.handle(request, response));
  }

  /** Starts the backend on a free loopback port. */
  static async start(): Promise<AuthorizerBackend> {
    const backend = new AuthorizerBackend(http.createServer());
    backend.server.listen(0, "127.0.0.1");
    await once(backend.server, "listening");
    return backend;
  }

  /** The base URL to pass as `--authorize-url`. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Sets the answer to a question. */
  decide(userId: string, room: string, action: "read" | "write", decision: Decision): void {
    this.table.set(keyOf(userId, room, action), decision);
  }

  /** How many times this question was asked. */
  count(userId: string, room: string, action: "read" | "write"): number {
    const wire = wireAction(action);
    return this.questions.filter((q) => q.userId === userId && q.room === room && q.action === wire).length;
  }

  /** Stops listening and drops every connection (hanging requests included). */
  async close(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, "close");
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== "POST" || request.url !== authorizePath) {
      return send(response, 404, { code: "unimplemented", message: `no ${request.method} ${request.url}` });
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      return send(response, 400, { code: "invalid_argument", message: "body is not JSON" });
    }
    const question: AuthorizeQuestion = {
      userId: typeof body.userId === "string" ? body.userId : "",
      roles: Array.isArray(body.roles) ? body.roles.map(String) : [],
      room: typeof body.room === "string" ? body.room : "",
      action: typeof body.action === "string" ? body.action : "",
    };
    this.questions.push(question);
    this.authorizations.push(request.headers.authorization ?? "");
    if (this.mode === "hang") {
      // Never answered; close() destroys it.
      this.hanging.add(response);
      response.on("close", () => this.hanging.delete(response));
      return;
    }
    if (this.mode === "fail") return send(response, 500, { code: "internal", message: "database is down" });
    // A bug in the application: "yes" is not a bool, so the answer must not read as an allow.
    if (this.mode === "garbage") return send(response, 200, { allowed: "yes", ttlSeconds: 60 });
    const action = question.action === "ROOM_ACTION_READ" ? "read" : question.action === "ROOM_ACTION_WRITE" ? "write" : undefined;
    if (action === undefined) return send(response, 400, { code: "invalid_argument", message: `unknown action ${question.action}` });
    const decision = this.table.get(keyOf(question.userId, question.room, action)) ?? { allowed: false, ttlSeconds: 60 };
    // proto3 JSON: default values may be left out, as many servers do.
    send(response, 200, { ...(decision.allowed ? { allowed: true } : {}), ...(decision.ttlSeconds !== 0 ? { ttlSeconds: decision.ttlSeconds } : {}) });
  }
}

function keyOf(userId: string, room: string, action: "read" | "write"): string {
  return `${userId}\n${room}\n${action}`;
}

function wireAction(action: "read" | "write"): string {
  return action === "read" ? "ROOM_ACTION_READ" : "ROOM_ACTION_WRITE";
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}
