/** In-memory stand-ins of the reporter's services, for tests of its decisions: never imported by runtime code. */
export * from "./testing/books"
export * from "./testing/notifier"
export * from "./testing/report-store"
