import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Broker } from "../broker/broker.js";
import { identityOf, requireRole } from "../auth/identity.js";
import { adminRole } from "../auth/api-keys.js";
import type { Logger } from "../log.js";
import { AdminService, InstanceInfoSchema, type InstanceInfo } from "../../gen/rivulet/admin/v1/admin_pb.js";
import type { Notification } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { postChatMessage, roomTopic } from "./chat.js";
import { presenceChanges } from "./presence-changes.js";
import { checkNotificationContent, storeNotification } from "./notify.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { checkIdempotencyKey, checkRoom, checkText, checkUserId } from "./validate.js";

/** What the server API needs beyond the services' deps: who this instance is, its connections, and the log. */
export interface AdminServiceOptions {
  /** This instance's id, as Info reports it (the Redis broker's, else --instance-id, else random). */
  readonly instanceId: string;
  /** This instance's open client connections by transport: the `rivulet_connections` gauge. */
  readonly connections: () => Promise<Record<string, number>>;
  /** Every call is logged at info with its caller's name and method. */
  readonly logger: Logger;
  /** How long Info waits for the other instances' answers. */
  readonly infoTimeoutMs?: number;
}

/** Broker topics of the server API, beside the rooms' (`chat.room/…`), so no client can subscribe to them. */
const topics = {
  /** A signal per Disconnect: `<origin instance id>\n<user id>`. */
  disconnect: "admin/disconnect",
  /** A signal per Info call: the request's id. */
  infoRequests: "admin/info",
  /** Each instance's answer: the request's id (16 characters), then its InstanceInfo. */
  infoReplies: "admin/info-replies",
  /** Presence of the instances themselves (each is a member while it runs), which Info waits for. */
  instances: "admin/instances",
} as const;

/** Most users one Notify call reaches (DESIGN.md, "Server API for backends"). */
const notifyMaxUsers = 1000;
/** Notifications stored at once by one Notify call: enough to overlap round trips to Redis, few enough to leave the connection to others. */
const notifyConcurrency = 32;
const defaultInfoTimeoutMs = 2000;

/**
 * AdminService, the server API for the application's backends (DESIGN.md,
 * "Server API for backends"): every method needs the `admin` role, which an
 * API key has (the auth interceptor, api-keys.ts) and a JWT may carry.
 *
 * Disconnect and Info reach every instance sharing the broker through its
 * signals, on topics every instance listens to from start until shutdown; an
 * instance hears its own signals too (memory and Redis alike), and skips its
 * own Disconnect, which it ended before sending.
 */
export function createAdminService(deps: ServiceDeps, options: AdminServiceOptions): ServiceImpl<typeof AdminService> {
  const { broker, calls, shutdownSignal } = deps;
  const { instanceId, logger } = options;
  const infoTimeoutMs = options.infoTimeoutMs ?? defaultInfoTimeoutMs;
  const disconnected = () => new ConnectError("disconnected by the server API", Code.PermissionDenied);

  /** Info calls waiting for answers, by request id. */
  const pendingInfo = new Map<string, (info: InstanceInfo) => void>();
  const stops = [
    broker.listenSignals(topics.disconnect, (data) => {
      const [origin, userId] = new TextDecoder().decode(data).split("\n");
      if (origin !== instanceId && userId !== undefined) calls.endUser(userId, disconnected());
    }),
    broker.listenSignals(topics.infoRequests, (data) => {
      const request = new TextDecoder().decode(data);
      void figures().then(
        (info) => broker.signal(topics.infoReplies, Buffer.concat([Buffer.from(request, "latin1"), toBinary(InstanceInfoSchema, info)])),
        (error: unknown) => logger.warn({ err: error }, "server API: this instance's figures could not be sent"),
      );
    }),
    broker.listenSignals(topics.infoReplies, (data) => {
      const request = Buffer.from(data.subarray(0, 16)).toString("latin1");
      pendingInfo.get(request)?.(fromBinary(InstanceInfoSchema, data.subarray(16)));
    }),
    broker.enterPresence(topics.instances, instanceId),
  ];
  shutdownSignal.addEventListener("abort", () => stops.forEach((stop) => stop()), { once: true });

  async function figures(): Promise<InstanceInfo> {
    return create(InstanceInfoSchema, { id: instanceId, connections: await options.connections(), topics: deps.hub.topicNames().sort() });
  }

  /** Checks the caller may use the server API, and logs the call with its name: the key's, or the admin token's subject. Never the credential. */
  function admit(context: HandlerContext, method: string): string {
    const identity = identityOf(context);
    requireRole(identity, adminRole);
    const caller = identity.apiKeyName !== undefined ? { apiKey: identity.apiKeyName } : { admin: identity.userId };
    logger.info({ ...caller, method }, "server API call");
    return identity.userId;
  }

  return {
    async publishMessage(request, context) {
      admit(context, "PublishMessage");
      checkRoom(request.room);
      checkUserId("author", request.author);
      checkText("text", request.text, 1, 4096);
      checkIdempotencyKey(request.idempotencyKey);
      // No room access check: the backend is trusted to post where and as whom it chooses.
      const message = await postChatMessage(deps, request.room, request.author, request.text, {
        method: "admin.publish-message",
        key: request.idempotencyKey,
      });
      return { message };
    },

    async notify(request, context) {
      const caller = admit(context, "Notify");
      if (request.userIds.length === 0) throw new ConnectError("user_ids is required", Code.InvalidArgument);
      if (request.userIds.length > notifyMaxUsers) throw new ConnectError(`user_ids has more than ${notifyMaxUsers} entries`, Code.InvalidArgument);
      for (const userId of request.userIds) checkUserId("user_ids", userId);
      checkNotificationContent(request);
      checkIdempotencyKey(request.idempotencyKey);
      const userIds = [...new Set(request.userIds)];
      const notifications: Notification[] = new Array<Notification>(userIds.length);
      let next = 0;
      const worker = async () => {
        while (next < userIds.length) {
          const index = next++;
          notifications[index] = await storeNotification(deps, userIds[index]!, request, { method: "admin.notify", caller, key: request.idempotencyKey });
        }
      };
      await Promise.all(Array.from({ length: Math.min(notifyConcurrency, userIds.length) }, worker));
      return { notifications };
    },

    async disconnect(request, context) {
      admit(context, "Disconnect");
      checkUserId("user_id", request.userId);
      // Here at once (the count is this instance's); the others when the signal reaches them.
      const endedHere = calls.endUser(request.userId, disconnected());
      await broker.signal(topics.disconnect, new TextEncoder().encode(`${instanceId}\n${request.userId}`));
      return { endedHere };
    },

    async presence(request, context) {
      admit(context, "Presence");
      checkRoom(request.room);
      const members = await presenceSnapshot(broker, roomTopic(request.room), context.signal);
      return { members: [...members].sort() };
    },

    async removeHistory(request, context) {
      admit(context, "RemoveHistory");
      checkRoom(request.room);
      await broker.removeHistory(roomTopic(request.room));
      return {};
    },

    async info(_request, context) {
      admit(context, "Info");
      const instances = await gatherInfo(context.signal);
      return { instances: instances.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
    },
  };

  /**
   * Every running instance's figures: the instances are the members of the
   * `admin/instances` presence (one that died drops out within the presence
   * TTL), each asked over the signals and awaited until all answered or the
   * timeout passed (an instance that died but has not expired yet, or missed
   * the request, is left out then).
   */
  async function gatherInfo(signal: AbortSignal): Promise<InstanceInfo[]> {
    const expected = await presenceSnapshot(broker, topics.instances, signal);
    const request = newId();
    const answers = new Map<string, InstanceInfo>();
    let answered = () => {};
    const allAnswered = new Promise<void>((resolve) => (answered = resolve));
    pendingInfo.set(request, (info) => {
      answers.set(info.id, info);
      if ([...expected].every((id) => answers.has(id))) answered();
    });
    let timer: NodeJS.Timeout | undefined;
    const aborted = () => answered();
    signal.addEventListener("abort", aborted, { once: true });
    try {
      // A broker that cannot send fails the call (unavailable), as any write does.
      await broker.signal(topics.infoRequests, new TextEncoder().encode(request));
      await Promise.race([allAnswered, new Promise<void>((resolve) => (timer = setTimeout(resolve, infoTimeoutMs)))]);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", aborted);
      pendingInfo.delete(request);
    }
    if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
    // This instance answers itself through the broker too; should its own answer be lost, it still counts.
    if (!answers.has(instanceId)) answers.set(instanceId, await figures());
    return [...answers.values()];
  }
}

/** Who is present in a topic now: the first answer of the presence stream (the whole membership), after which the watch stops. */
async function presenceSnapshot(broker: Broker, topic: string, signal: AbortSignal): Promise<ReadonlySet<string>> {
  for await (const change of presenceChanges(broker, topic, signal)) return new Set(change.members);
  throw ConnectError.from(signal.reason, Code.Canceled);
}
