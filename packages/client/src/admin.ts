/** rivulet.admin.v1: AdminService, the server API for backends (API keys or admin-role tokens): its messages and their schemas. */
export * from "../../../gen/rivulet/admin/v1/admin_pb.js";
