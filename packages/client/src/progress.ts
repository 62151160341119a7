/** rivulet.progress.v1: ProgressService, its messages and their schemas. */
export * from "../../../gen/rivulet/progress/v1/progress_pb.js";
