export * from "./workspace"
export * from "./emulator"
export * from "./provision"
