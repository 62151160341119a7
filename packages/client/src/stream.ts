/** rivulet.stream.v1: Gap, the response that says the server could not replay everything since a cursor. */
export * from "../../../gen/rivulet/stream/v1/gap_pb.js";
