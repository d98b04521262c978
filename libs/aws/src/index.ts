export * from "./errors"
export * from "./call"
export * from "./clients"
export * from "./recovery-points"
