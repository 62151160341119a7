/** rivulet.options.v1: the method options (stream policy, resumability) the transports read from descriptors. */
export * from "../../../gen/rivulet/options/v1/options_pb.js";
