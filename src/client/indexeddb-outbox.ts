import type { NewOutboxEntry, OutboxEntry, OutboxStore } from "./outbox.js";

/** Options of createIndexedDbOutbox(). */
export interface IndexedDbOutboxOptions {
  /** The IndexedDB factory; defaults to `globalThis.indexedDB` (browsers). */
  readonly indexedDB?: IDBFactory;
}

const storeName = "entries";

/**
 * A durable outbox in the browser's IndexedDB: database `rivulet-outbox:<name>`,
 * one object store whose auto-incremented keys are the replay order. Writes
 * queued by a page survive its reload or closing, and a transport created
 * later with the same name (in any tab of the origin) replays them. A `put`
 * resolves once its transaction committed with strict durability, so a page
 * closed right after still has the write. Plain IndexedDB: four calls do not
 * justify a library.
 */
export function createIndexedDbOutbox(name: string, options: IndexedDbOutboxOptions = {}): OutboxStore {
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  let opened: Promise<IDBDatabase> | undefined;

  function database(): Promise<IDBDatabase> {
    if (!factory) return Promise.reject(new Error("no IndexedDB in this runtime: use createMemoryOutbox()"));
    opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = factory.open(`rivulet-outbox:${name}`, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(storeName, { keyPath: "id", autoIncrement: true });
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading the schema later: let it, and reopen on next use.
        db.onversionchange = () => {
          db.close();
          opened = undefined;
        };
        resolve(db);
      };
      request.onerror = () => reject(request.error ?? new Error(`could not open IndexedDB rivulet-outbox:${name}`));
      request.onblocked = () => reject(new Error(`IndexedDB rivulet-outbox:${name} is blocked by another tab`));
    });
    // A failed open is retried on next use rather than remembered.
    opened.catch(() => (opened = undefined));
    return opened;
  }

  /** Runs one request in its own transaction and resolves with its result once the transaction committed. */
  async function run<T>(mode: IDBTransactionMode, operation: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await database();
    return new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(storeName, mode, { durability: "strict" });
      const request = operation(transaction.objectStore(storeName));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error ?? request.error ?? new Error("IndexedDB transaction failed"));
      transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB transaction aborted (quota?)"));
    });
  }

  return {
    name,
    async put(entry: NewOutboxEntry): Promise<OutboxEntry> {
      const id = await run("readwrite", (store) => store.add({ ...entry }));
      return { ...entry, id: id as number };
    },
    // getAll walks the key order, which is the order of `put`.
    list: () => run("readonly", (store) => store.getAll() as IDBRequest<OutboxEntry[]>),
    delete: async (id: number) => {
      await run("readwrite", (store) => store.delete(id));
    },
  };
}
