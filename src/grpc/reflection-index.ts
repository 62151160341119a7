import { createRegistry, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * What server reflection answers from: the served services, and every file
 * they are defined in or import (transitively), from the generated
 * descriptors. Nothing else of the process's schema is visible: a type no
 * served service reaches cannot be asked for.
 */
export interface ReflectionIndex {
  /** Full names of the served services, in the order given. */
  readonly serviceNames: readonly string[];
  /** A file by its name in the schema (`rivulet/chat/v1/chat.proto`). */
  fileByName(name: string): DescFile | undefined;
  /**
   * The file defining a fully qualified symbol: a service, method, message,
   * enum, extension (nested ones too), field, oneof or enum value. The names
   * are protobuf's: an enum value is scoped beside its enum, not inside it.
   */
  fileContainingSymbol(symbol: string): DescFile | undefined;
  /** The file defining extension `number` of message `typeName`. */
  fileContainingExtension(typeName: string, number: number): DescFile | undefined;
  /** The numbers of every known extension of message `typeName`; undefined for an unknown message. */
  extensionNumbersOf(typeName: string): number[] | undefined;
  /**
   * A file then its transitive imports, each once, as serialized
   * `google.protobuf.FileDescriptorProto`s: what a reflection client needs
   * to build the file's descriptors without asking again.
   */
  serializedWithDependencies(file: DescFile): Uint8Array[];
}

/** Indexes the files of `services` and everything they import. */
export function createReflectionIndex(services: readonly DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);
  const registry = createRegistry(...files.values());
  const serialized = new Map<DescFile, Uint8Array>();

  function fileContainingSymbol(symbol: string): DescFile | undefined {
    const type = registry.get(symbol);
    if (type) return type.file;
    const dot = symbol.lastIndexOf(".");
    if (dot < 0) return undefined;
    const [scope, name] = [symbol.slice(0, dot), symbol.slice(dot + 1)];
    const service = registry.getService(scope);
    if (service) return service.methods.some((method) => method.name === name) ? service.file : undefined;
    const message = registry.getMessage(scope);
    if (message && (message.fields.some((field) => field.name === name) || message.oneofs.some((oneof) => oneof.name === name))) {
      return message.file;
    }
    // Enum values live in the scope that holds their enum (a package or a message).
    for (const type of registry) {
      if (type.kind === "enum" && parentScope(type.typeName) === scope && type.values.some((value) => value.name === name)) return type.file;
    }
    return undefined;
  }

  return {
    serviceNames: services.map((service) => service.typeName),
    fileByName: (name) => files.get(name),
    fileContainingSymbol,
    fileContainingExtension(typeName, number) {
      const message = registry.getMessage(typeName);
      return message ? registry.getExtensionFor(message, number)?.file : undefined;
    },
    extensionNumbersOf(typeName) {
      if (!registry.getMessage(typeName)) return undefined;
      const numbers: number[] = [];
      for (const type of registry) if (type.kind === "extension" && type.extendee.typeName === typeName) numbers.push(type.number);
      return numbers.sort((a, b) => a - b);
    },
    serializedWithDependencies(file) {
      const result: Uint8Array[] = [];
      const seen = new Set<DescFile>();
      const add = (each: DescFile) => {
        if (seen.has(each)) return;
        seen.add(each);
        let bytes = serialized.get(each);
        if (bytes === undefined) serialized.set(each, (bytes = toBinary(FileDescriptorProtoSchema, each.proto)));
        result.push(bytes);
        for (const dependency of each.dependencies) add(dependency);
      };
      add(file);
      return result;
    },
  };
}

function parentScope(typeName: string): string {
  const dot = typeName.lastIndexOf(".");
  return dot < 0 ? "" : typeName.slice(0, dot);
}
