/** rivulet.notify.v1: NotificationService, its messages and their schemas. */
export * from "../../../gen/rivulet/notify/v1/notify_pb.js";
